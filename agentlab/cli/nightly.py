"""``agentlab nightly``: replay the suites, hold them to their recordings, write the report.

Exits 1 when a measure moved beyond its suite's threshold or a task broke, naming the task
and its diff; the self-contained HTML report goes under ``reports/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from agentlab.cli import suites
from agentlab.cli._console import console, err_console
from agentlab.cli.lab_output import show_regressions
from agentlab.lab.metrics import MetricsStore, open_metrics
from agentlab.lab.nightly import NightlyOutcome, nightly_history, run_nightly
from agentlab.lab.parallel import default_workers
from agentlab.lab.results import MODES, RunResult
from agentlab.lab.runner import CASSETTES
from agentlab.report import write_nightly_report


def nightly(  # noqa: PLR0917 -- typer passes each option as a parameter
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help="A suite to run (repeatable). Default: helpdesk."),
    ] = None,
    mode: Annotated[str, typer.Option(help="replay (the nightly job) or upgrade.")] = "replay",
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Only this model (repeatable). Default: the suite's."),
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option("--config", "-c", help="Only this configuration (repeatable)."),
    ] = None,
    metrics: suites.MetricsOption = None,
    cassettes: Annotated[Path, typer.Option(help="The cassette library's root.")] = CASSETTES,
    reports: Annotated[Path, typer.Option(help="Where the HTML report is written.")] = Path(
        "reports"
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="Runs in flight at once.")] = 4,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            show_default=False,
            help="Processes to replay in, this one included. Default: one per core.",
        ),
    ] = None,
) -> None:
    """Replay the golden-run suites and fail on a regression beyond the suites' thresholds."""
    if mode not in MODES or mode == "record":
        raise typer.BadParameter("--mode must be replay or upgrade")
    with open_metrics(suites.metrics_path(metrics)) as store:
        outcome = run_nightly(
            suite or ["helpdesk"],
            metrics=store,
            mode=mode,  # type: ignore[arg-type]
            models=model or None,
            configs=config or None,
            cassettes=cassettes,
            concurrency=concurrency,
            on_result=_progress,
            workers=workers or default_workers(),
        )
        suites.show_experiments(store, outcome.runs, show_failures=False)
        report = _report(store, outcome, reports)
    for label, statuses in outcome.slos:
        for status in statuses:
            mark = "SPENT " if status.is_exhausted else ""
            console.print(f"  {label}: {mark}{status.summary()}", highlight=False, soft_wrap=True)
    show_regressions(outcome.regressions)
    console.print(f"report: {report}", highlight=False, soft_wrap=True)
    if outcome.is_regressed:
        raise typer.Exit(1)


def _report(store: MetricsStore, outcome: NightlyOutcome, folder: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return write_nightly_report(
        folder / f"nightly-{stamp}.html",
        kpis=store.kpis(outcome.experiment_ids),
        comparisons=outcome.comparisons,
        regressions=outcome.regressions,
        history=nightly_history(store),
        failed_runs=outcome.failed,
        slos=outcome.slos,
    )


def _progress(result: RunResult, done: int, total: int) -> None:
    """One line per finished experiment, on stderr (stdout keeps the tables)."""
    if done == total:
        err_console.print(
            f"{result.suite} {result.config} {result.model} {result.mode}: {total} runs",
            highlight=False,
        )
