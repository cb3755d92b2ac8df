"""The nightly regression job: replay the suites, hold them to their recordings, report.

Every configuration x model of each suite is replayed (one experiment each, labelled
``nightly``) and compared with the same runs as graded when their cassettes were recorded:
the recording is the golden baseline, so a regression stays red until it is fixed or the
suite is deliberately re-recorded. Breaches of the suite's thresholds and broken tasks are
:class:`Regression` s; the HTML report puts them first and links each to its task's diff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agentlab.lab.compare import Comparison, Regression, TaskDiff, compare, regressions
from agentlab.lab.metrics import MetricsStore
from agentlab.lab.parallel import SuiteJob, run_jobs
from agentlab.lab.results import Mode, RunResult
from agentlab.lab.runner import CASSETTES, OnResult, SuiteRun
from agentlab.lab.suite import Suite, load_suite
from agentlab.ops.slo import SLOStatus, evaluate_slos
from agentlab.tools import ToolRegistry

NIGHTLY = "nightly"
"""The label of the experiments ``nightly`` runs (the report's trend charts follow them)."""


@dataclass
class NightlyOutcome:
    """What a nightly run did and found."""

    runs: list[SuiteRun] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    regressions: list[Regression] = field(default_factory=list)
    failed: list[RunResult] = field(default_factory=list)
    """Every run that did not pass, for the report's drill-down."""
    slos: list[tuple[str, list[SLOStatus]]] = field(default_factory=list)
    """Each configuration x model's SLOs (by a ``suite · config · model`` label), over
    tonight's runs and the earlier nightlies inside each SLO's window."""

    @property
    def is_regressed(self) -> bool:
        """True when ``nightly`` must fail."""
        return bool(self.regressions)

    @property
    def experiment_ids(self) -> list[str]:
        """The experiments this nightly ran, in order."""
        return [run.experiment.experiment_id for run in self.runs]


def run_nightly(
    suites: Sequence[str | Path | Suite] = ("helpdesk",),
    *,
    metrics: MetricsStore,
    mode: Mode = "replay",
    models: Sequence[str] | None = None,
    configs: Sequence[str] | None = None,
    cassettes: Path = CASSETTES,
    concurrency: int = 4,
    on_result: OnResult | None = None,
    tools: ToolRegistry | None = None,
    workers: int = 1,
) -> NightlyOutcome:
    """Replay ``suites`` under every configuration and model, and compare with the recordings.

    ``agentlab.report.write_nightly_report`` turns the outcome into the HTML report.

    Args:
        suites: Suites by name, path, or loaded.
        metrics: Where the experiments go; the report's trends come from its earlier nightlies.
        mode: ``replay`` (the nightly job) or ``upgrade`` (a candidate model against the
            baseline model's recorded tools).
        models: The models to run (default: each suite's ``models``).
        configs: The configurations (default: each suite's ``configs``).
        cassettes: The cassette library.
        concurrency: Runs in flight at once.
        on_result: Told of each finished run.
        tools: The agent's tools (the built-in ones if None; given, they keep the runs in
            this process).
        workers: Processes to share the configurations and models out over, this one
            included (``agentlab.lab.parallel``). More than 1 spawns processes, so a script
            that asks for them must guard its entry point with ``if __name__ ==
            "__main__":``, as Python's multiprocessing requires.
    """
    outcome = NightlyOutcome()
    loaded = [entry if isinstance(entry, Suite) else load_suite(entry) for entry in suites]
    jobs = [
        SuiteJob(suite, config, model)
        for suite in loaded
        for model in models or suite.models
        for config in configs or suite.configs
    ]
    runs = run_jobs(
        jobs,
        metrics=metrics,
        workers=workers,
        mode=mode,
        cassettes=cassettes,
        concurrency=concurrency,
        label=NIGHTLY,
        on_result=on_result,
        tools=tools,
    )
    for job, run in zip(jobs, runs, strict=True):
        suite, config, model = job.suite, job.config, job.model
        outcome.runs.append(run)
        if suite.slos:
            label = f"{suite.name} · {config} · {model}"
            outcome.slos.append((label, _slo_statuses(metrics, run, suite)))
        outcome.failed += [r for r in run.results if not r.success]
        outcome.regressions += _errors(run.results)
        replayed = [r for r in run.results if r.error is None]
        if not run.recorded or not replayed:
            continue
        comparison = compare(
            run.recorded,
            replayed,
            baseline_label=f"{config} · {model} · as recorded",
            candidate_label=f"{config} · {model} · {mode}",
        )
        outcome.comparisons.append(comparison)
        found = regressions(comparison, suite.thresholds)
        outcome.regressions += found + _divergences(replayed, comparison, found)
    return outcome


def _divergences(
    results: Sequence[RunResult], comparison: Comparison, found: Sequence[Regression]
) -> list[Regression]:
    """Runs that left their recording, when not already a broken task.

    A replay must make exactly the recorded calls; one that does not is a regression even
    for a task that failed when recorded (it fails differently now).
    """
    named = {r.name for r in found if r.kind == "task"}
    extra = []
    for r in results:
        diverged = [c for c in r.checks if c.name == "replay" and not c.passed]
        if not diverged or r.task_id in named:
            continue
        named.add(r.task_id)
        extra.append(
            _broken_task(
                r,
                limit="a replay makes exactly the recorded calls",
                why=f"left its recording: {diverged[0].detail}",
                task=comparison.task(r.task_id),
            )
        )
    return extra


def _errors(results: Sequence[RunResult]) -> list[Regression]:
    """Runs that could not be carried out (a missing or broken cassette): always regressions."""
    return [
        _broken_task(r, limit="every run must be carried out", why=f"could not run: {r.error}")
        for r in results
        if r.error is not None
    ]


def _broken_task(
    result: RunResult, *, limit: str, why: str, task: TaskDiff | None = None
) -> Regression:
    """A task regression that no threshold needs to judge: it broke outright."""
    where = f"{result.suite}/{result.config}/{result.model}"
    return Regression(
        kind="task",
        name=result.task_id,
        suite=result.suite,
        config=result.config,
        model=result.model,
        baseline=None,
        current=0.0,
        limit=limit,
        message=f"{where}: task {result.task_id} {why}",
        task=task,
    )


def slo_kpis(row: Mapping[str, Any]) -> dict[str, float]:
    """A ``kpis`` view row under the names SLOs are declared over (``agentlab.ops.slo``)."""
    names = {
        "success_rate": ("success_rate", 1.0),
        "rework_rate": ("rework_rate", 1.0),
        "tool_failure_rate": ("tool_failure_rate", 1.0),
        "p50_latency_s": ("p50_latency_ms", 0.001),
        "p95_latency_s": ("p95_latency_ms", 0.001),
        "cost_per_run_usd": ("cost_per_run", 1.0),
        "safety_violations": ("safety_violations", 1.0),
        "runs": ("runs", 1.0),
    }
    found = {}
    for name, (column, scale) in names.items():
        value = row.get(column)
        if value is not None and not pd.isna(value):
            found[name] = float(value) * scale
    return found


def _slo_statuses(metrics: MetricsStore, run: SuiteRun, suite: Suite) -> list[SLOStatus]:
    """Tonight's KPIs against the suite's SLOs, with the earlier nightlies in the window."""
    spec = run.experiment.spec
    kpis = metrics.kpis(suite=spec.suite, label=NIGHTLY)
    same = kpis[(kpis["config"] == spec.config) & (kpis["model"] == spec.model)]
    tonight = same[same["experiment_id"] == run.experiment.experiment_id]
    if tonight.empty:
        return []
    started = run.experiment.started_at
    statuses = []
    for slo in suite.slos:  # each over the earlier nightlies inside its own window
        earlier = same[
            (same["experiment_id"] != run.experiment.experiment_id)
            & (same["started_at"] >= started - slo.window)
            & (same["started_at"] < started)
        ]
        history = [slo_kpis(row) for _, row in earlier.iterrows()]
        statuses += evaluate_slos(slo_kpis(tonight.iloc[0]), [slo], history=history)
    return statuses


def nightly_history(metrics: MetricsStore, suite: str | None = None) -> pd.DataFrame:
    """The KPIs of every finished nightly experiment, oldest first (the report's trends)."""
    experiments = metrics.experiments(suite=suite, label=NIGHTLY)
    if experiments.empty:
        return metrics.kpis([])
    finished = experiments[experiments["finished_at"].notna()]
    kpis = metrics.kpis(list(finished["experiment_id"]))
    return kpis.sort_values("started_at", kind="stable").reset_index(drop=True)
