"""``agentlab experiments``: what the metrics database holds, newest first, with its KPIs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from agentlab.cli import suites
from agentlab.cli._console import console
from agentlab.lab.metrics import open_metrics


def experiments(
    suite: Annotated[str | None, typer.Option(help="Only this suite's experiments.")] = None,
    label: Annotated[str | None, typer.Option(help="Only experiments with this label.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 30,
    metrics: suites.MetricsOption = None,
) -> None:
    """List experiments (suite x configuration x model x mode x code version) and their KPIs."""
    with open_metrics(suites.metrics_path(metrics)) as store:
        kpis = store.kpis(suite=suite, label=label)
    if kpis.empty:
        console.print("no experiments yet: run `agentlab run --suite helpdesk`")
        return
    table = Table(title=f"experiments (newest first, at most {limit})", title_justify="left")
    columns = ("experiment", "suite", "config", "model", "mode", "code", "label", "runs",
               "success", "P95 s", "cost/run")  # fmt: skip
    for column in columns:
        table.add_column(column, no_wrap=column == "experiment")
    for row in kpis.iloc[::-1].head(limit).itertuples(index=False):
        table.add_row(
            row.experiment_id, row.suite, row.config, row.model, row.mode,
            str(row.code_version), str(row.label or ""), str(row.runs),
            f"{row.success_rate:.0%}", f"{row.p95_latency_ms / 1000:.1f}",
            f"${row.cost_per_run:.4f}",
        )  # fmt: skip
    console.print(table)
