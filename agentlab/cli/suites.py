"""``agentlab run --suite``: a golden-run suite under its configurations, with a progress bar.

Each configuration x model is one experiment in the metrics database
(``<AGENTLAB_HOME>/lab.duckdb``); the article's benchmark table is printed from there, with
the failed tasks and the check that failed them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentlab.cli._console import console, err_console
from agentlab.cli.lab_output import show_multi_turn
from agentlab.core.settings import Settings
from agentlab.lab.conversation import multi_turn_pass_k
from agentlab.lab.metrics import (
    MetricsStore,
    benchmark_table,
    format_benchmark_table,
    open_metrics,
)
from agentlab.lab.results import MODES, RunResult
from agentlab.lab.runner import CASSETTES, OnResult, SuiteRun, run_suite
from agentlab.lab.suite import Suite, load_suite

MetricsOption = Annotated[
    Path | None,
    typer.Option(
        "--metrics",
        envvar="AGENTLAB_METRICS_PATH",
        help="The metrics DuckDB file. Default: <AGENTLAB_HOME>/lab.duckdb.",
        show_default=False,
        rich_help_panel="Suites",
    ),
]
CassettesOption = Annotated[
    Path,
    typer.Option("--cassettes", help="The cassette library's root.", rich_help_panel="Suites"),
]


def metrics_path(path: Path | None) -> Path:
    """The metrics file given, or the one in agentlab's home."""
    return path or Settings().home / "lab.duckdb"


def run_suites(
    suite_name: str,
    *,
    configs: Sequence[str],
    models: Sequence[str],
    mode: str,
    repeats: int,
    concurrency: int,
    task_ids: Sequence[str],
    metrics: Path | None,
    cassettes: Path,
    baseline_model: str | None,
    model_url: str | None,
    resume: bool,
    label: str,
) -> list[SuiteRun]:
    """Run ``suite_name`` under each configuration and model; print progress and the table."""
    suite = load_suite(suite_name)
    configs = list(configs) or list(suite.configs)
    models = list(models) or [suite.baseline_model]
    if mode not in MODES:
        raise typer.BadParameter(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    runs: list[SuiteRun] = []
    with open_metrics(metrics_path(metrics)) as store:
        for model in models:
            for config in configs:
                runs.append(
                    _one(
                        suite,
                        store,
                        config=config,
                        model=model,
                        mode=mode,
                        repeats=repeats,
                        concurrency=concurrency,
                        task_ids=task_ids,
                        cassettes=cassettes,
                        baseline_model=baseline_model,
                        model_url=model_url,
                        resume=resume,
                        label=label,
                    )
                )
        show_experiments(store, runs)
    return runs


def _one(suite: Suite, store: MetricsStore, **options: object) -> SuiteRun:
    config, model, mode = options["config"], options["model"], options["mode"]
    with run_progress(f"{suite.name} {config} {model} {mode}") as advance:
        return run_suite(
            suite,
            config=config,
            model=model,
            mode=mode,
            metrics=store,
            cassettes=options["cassettes"],
            repeats=options["repeats"],
            concurrency=options["concurrency"],
            tasks=options["task_ids"] or None,
            baseline_model=options["baseline_model"],
            model_base_url=options["model_url"],
            resume=options["resume"],
            label=options["label"],
            on_result=advance,
        )


@contextmanager
def run_progress(title: str) -> Iterator[OnResult]:
    """A progress bar on stderr, and the ``on_result`` that moves it (run, done, total)."""
    with Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        bar = progress.add_task("runs", total=None, last="")

        def advance(result: RunResult, done: int, total: int) -> None:
            mark = "ok" if result.success else f"FAIL {result.failure_cause}"
            progress.update(bar, completed=done, total=total, last=f"{result.task_id} {mark}")

        yield advance


def show_experiments(
    store: MetricsStore, runs: Sequence[SuiteRun], *, show_failures: bool = True
) -> None:
    """The article's benchmark table for these experiments, then their failed tasks."""
    ids = [run.experiment.experiment_id for run in runs]
    kpis = store.kpis(ids)
    for model, frame in kpis.groupby("model", sort=False):
        table = benchmark_table(frame)
        simulated = str(model).startswith("sim-")
        title = f"{runs[0].experiment.spec.suite}: {model}" + (
            " (agentlab's offline simulator)" if simulated else ""
        )
        console.print(f"[bold]{title}[/bold]")
        console.print(format_benchmark_table(table), highlight=False, markup=False, soft_wrap=True)
    show_multi_turn(multi_turn_pass_k([r for run in runs for r in run.results]))
    failed = [r for run in runs for r in run.results if not r.success]
    if failed and show_failures:
        console.print(f"[bold]{len(failed)} failed run(s)[/bold]")
        for result in failed[:40]:
            why = result.failed_checks[0].detail if result.failed_checks else result.error
            console.print(
                f"  {result.config:8} {result.model:10} {result.task_id:28} "
                f"{result.failure_cause}: {why}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if len(failed) > 40:
            console.print(f"  ... and {len(failed) - 40} more (see the metrics database)")


def default_cassettes() -> Path:
    """The shipped cassette library."""
    return CASSETTES
