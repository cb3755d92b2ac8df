"""Replays shared out over processes give what one process gives, all in one metrics store.

The jobs replay a few tasks of the shipped helpdesk suite from its committed cassettes, in
this process and in a spawned worker, and the worker's metrics file is absorbed into the
caller's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError, StoreError
from agentlab.lab.metrics import open_metrics
from agentlab.lab.parallel import SuiteJob, run_jobs
from agentlab.lab.results import RunResult
from agentlab.lab.runner import run_suite
from agentlab.lab.suite import load_suite

pytestmark = pytest.mark.integration

TASKS = ["po-toner", "kb-vpn", "mail-buyer", "refuse-pricing-to-supplier"]


def comparable(result: RunResult) -> dict[str, object]:
    return result.model_dump(exclude={"experiment_id"})


def test_two_processes_replay_what_one_does_into_one_store(tmp_path: Path) -> None:
    suite = load_suite("helpdesk")
    jobs = [
        SuiteJob(suite, "multi", "sim-large"),
        SuiteJob(suite, "single", "sim-small"),
        SuiteJob(suite, "chat_rag", "sim-large"),
    ]
    told: list[tuple[str, str, int, int, str]] = []

    def on_result(result: RunResult, done: int, total: int) -> None:
        told.append((result.config, result.task_id, done, total, threading.current_thread().name))

    with open_metrics(tmp_path / "one.duckdb") as metrics:
        alone = run_jobs(jobs, metrics=metrics, workers=1, tasks=TASKS)
    with open_metrics(tmp_path / "two.duckdb") as metrics:
        shared = run_jobs(jobs, metrics=metrics, workers=2, tasks=TASKS, on_result=on_result)
        runs = metrics.runs([run.experiment.experiment_id for run in shared])
        experiments = metrics.experiments()

    assert [[comparable(r) for r in run.results] for run in shared] == [
        [comparable(r) for r in run.results] for run in alone
    ]
    assert [(run.experiment.spec.config, run.experiment.spec.model) for run in shared] == [
        (job.config, job.model) for job in jobs
    ]
    # every job's runs are in the caller's store, whichever process ran them
    assert len(experiments) == len(jobs)
    assert sorted(zip(runs["config"], runs["task_id"], strict=True)) == sorted(
        (job.config, task) for job in jobs for task in TASKS
    )
    # the caller heard of every run, the worker's through its relay thread
    assert sorted((c, t) for c, t, *_ in told) == sorted(
        (job.config, task) for job in jobs for task in TASKS
    )
    assert {thread for *_, thread in told} == {"MainThread", "agentlab-progress"}


def test_a_worker_file_is_absorbed_once(tmp_path: Path) -> None:
    suite = load_suite("helpdesk")
    with open_metrics(tmp_path / "worker.duckdb") as worker:
        run_jobs([SuiteJob(suite, "single", "sim-large")], metrics=worker, tasks=TASKS[:2])
    with open_metrics(tmp_path / "main.duckdb") as metrics:
        metrics.absorb(tmp_path / "worker.duckdb")
        assert len(metrics.runs()) == 2
        assert len(metrics.steps()) > 0
        with pytest.raises(StoreError, match="already holds experiment"):
            metrics.absorb(tmp_path / "worker.duckdb")
        assert len(metrics.runs()) == 2
        with pytest.raises(StoreError, match="cannot read"):
            metrics.absorb(tmp_path / "missing.duckdb")


def test_run_suite_works_inside_a_running_event_loop() -> None:
    """As in a notebook's cell: Jupyter's kernel runs an event loop already."""

    async def cell() -> list[bool]:
        run = run_suite("helpdesk", config="single", model="sim-large", tasks=TASKS[:2])
        return [r.success for r in run.results]

    assert asyncio.run(cell()) == [True, True]


@pytest.mark.timeout(300)
def test_a_failed_worker_costs_only_its_own_jobs(tmp_path: Path) -> None:
    suite = load_suite("helpdesk")
    jobs = [
        SuiteJob(suite, "multi", "sim-large"),
        SuiteJob(suite, "nope", "sim-large"),  # no such configuration: its worker fails
        SuiteJob(suite, "single", "sim-small"),
    ]
    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        with pytest.raises(ConfigError) as caught:
            run_jobs(jobs, metrics=metrics, workers=3, tasks=TASKS[:2])
        experiments = metrics.experiments()
        kept = sorted(zip(experiments["config"], experiments["model"], strict=True))
        runs = len(metrics.runs())
    assert str(caught.value).startswith("[CONFIG] suite 'helpdesk' does not run configuration")
    assert caught.value.__notes__ == [
        "agentlab: these jobs did not finish: helpdesk/nope/sim-large; the others are in the store"
    ]
    assert kept == [("multi", "sim-large"), ("single", "sim-small")]
    assert runs == 4


@pytest.mark.timeout(300)
def test_a_progress_callback_that_raises_in_the_relay_does_not_hang_the_replay(
    tmp_path: Path,
) -> None:
    suite = load_suite("helpdesk")
    jobs = [SuiteJob(suite, "multi", "sim-large"), SuiteJob(suite, "chat_rag", "sim-large")]

    def on_result(result: RunResult, done: int, total: int) -> None:
        if threading.current_thread().name == "agentlab-progress":
            raise RuntimeError("the progress bar broke")

    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        with pytest.raises(RuntimeError, match="the progress bar broke"):
            run_jobs(jobs, metrics=metrics, workers=2, tasks=TASKS, on_result=on_result)
        assert len(metrics.runs()) == 2 * len(TASKS)  # every run was kept all the same


def test_an_interrupt_in_a_notebook_stops_the_suite_and_keeps_what_finished(
    tmp_path: Path,
) -> None:
    """Jupyter's "interrupt kernel" lands in the waiting cell while the suite runs."""
    told: list[str] = []

    def interrupt_after_the_first(result: RunResult, done: int, total: int) -> None:
        told.append(result.task_id)
        if len(told) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as Jupyter interrupts a kernel
            # The suite's thread yields here, so the waiting cell takes the interrupt and
            # asks for the cancellation before this suite can finish on its own.
            time.sleep(0.2)

    tasks = [t.id for t in load_suite("helpdesk").tasks][:20]

    async def cell() -> None:
        with open_metrics(tmp_path / "lab.duckdb") as metrics:
            try:
                run_suite(
                    "helpdesk", config="single", model="sim-large", tasks=tasks, concurrency=1,
                    metrics=metrics, on_result=interrupt_after_the_first,
                )  # fmt: skip
            finally:
                kept = len(metrics.runs())
            raise AssertionError(f"not interrupted; {kept} runs")

    # A loop of our own, as ipykernel has: asyncio.run would turn SIGINT into a cancellation
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
    finally:
        loop.close()
    assert 1 <= len(told) < len(tasks)
    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        assert sorted(metrics.runs()["task_id"]) == sorted(told)  # kept, for resume
