"""Run several suite x configuration x model jobs on all cores.

A replayed run is pure CPU (its model and tools answer from a cassette), so one process
uses one core. The jobs are shared out over ``workers`` processes, the calling process
included: each worker writes its experiments to a DuckDB file of its own (DuckDB has one
writer per file), and when it is done the file is absorbed into the caller's metrics store
in one transaction. Results are the same as a sequential run's, run for run, since a
replay's ids and clock depend only on the suite, the task and the repetition.

Workers are spawned (a fresh interpreter, never a fork of a process holding threads and
database connections), so each pays for importing agentlab once (about 2 s). The calling
process starts them first and meanwhile runs its own share. Jobs that give their own tool
registry stay in the calling process: tools are code and do not cross processes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentlab.lab.metrics import MetricsStore, open_metrics
from agentlab.lab.results import Mode, RunResult
from agentlab.lab.runner import CASSETTES, OnResult, SuiteRun, run_suite
from agentlab.lab.suite import Suite

CONFIG_WEIGHT = {"chat_rag": 1.0, "single": 1.3, "multi": 2.0}
"""A replayed run's relative cost by configuration, to share jobs out evenly."""


@dataclass(frozen=True)
class SuiteJob:
    """One suite under one configuration and one model."""

    suite: Suite
    config: str
    model: str

    @property
    def weight(self) -> float:
        """Its expected cost, in chat runs."""
        return len(self.suite.tasks) * CONFIG_WEIGHT.get(self.config, 1.5)


def default_workers() -> int:
    """Processes to use: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_jobs(
    jobs: Sequence[SuiteJob],
    *,
    metrics: MetricsStore,
    workers: int | None = None,
    mode: Mode = "replay",
    cassettes: Path = CASSETTES,
    concurrency: int = 4,
    label: str = "",
    on_result: OnResult | None = None,
    **options: Any,
) -> list[SuiteRun]:
    """Run every job (``run_suite`` with ``resume=False``) over ``workers`` processes.

    Args:
        jobs: What to run.
        metrics: Where every experiment ends up.
        workers: Processes, this one included (:func:`default_workers` if None); 1 runs
            the jobs one after another here.
        mode: ``replay`` or ``upgrade`` (``record`` writes cassettes: run it in one process).
        cassettes: The cassette library.
        concurrency: Runs in flight at once in each process.
        label: Stored with each experiment.
        on_result: Told of each finished run, in this process, whichever ran it.
        options: More ``run_suite`` options, the same for every job (``tools`` keeps the
            jobs in this process).

    Returns:
        One :class:`SuiteRun` per job, in the jobs' order.
    """
    common = {
        "mode": mode,
        "cassettes": cassettes,
        "concurrency": concurrency,
        "label": label,
        "resume": False,
        **options,
    }
    processes = min(workers or default_workers(), len(jobs))
    if processes <= 1 or mode == "record" or options.get("tools") is not None:
        return [_run(job, metrics, common, on_result) for job in jobs]

    shares = _share_out(jobs, processes)
    progress: Any = _SPAWN.Queue()
    relay = _Relay(progress, on_result)
    results: dict[int, SuiteRun] = {}
    with tempfile.TemporaryDirectory(prefix="agentlab-parallel-") as folder:
        relay.start()
        try:
            with ProcessPoolExecutor(
                max_workers=processes - 1,
                mp_context=_SPAWN,
                initializer=_start_worker,
                initargs=(progress,),
            ) as pool:
                futures = [
                    (path, pool.submit(_worker, share, path, common))
                    for path, share in (
                        (Path(folder) / f"worker-{n}.duckdb", share)
                        for n, share in enumerate(shares[1:], start=1)
                    )
                ]
                for index, job in shares[0]:
                    results[index] = _run(job, metrics, common, on_result)
                done = [(path, future.result()) for path, future in futures]
        finally:
            relay.stop()  # after the pool has shut down: the workers' last words are in
        for path, runs in done:
            results.update(runs)
            metrics.absorb(path)
    return [results[index] for index in range(len(jobs))]


def _run(
    job: SuiteJob, metrics: MetricsStore, common: dict[str, Any], on_result: OnResult | None
) -> SuiteRun:
    return run_suite(
        job.suite,
        config=job.config,
        model=job.model,
        metrics=metrics,
        on_result=on_result,
        **common,
    )


def _share_out(jobs: Sequence[SuiteJob], processes: int) -> list[list[tuple[int, SuiteJob]]]:
    """Jobs by process, heaviest first to the least loaded.

    The workers (shares 1 and on) start about 2 s late, the time it takes to import
    agentlab, so they start with that much load already.
    """
    shares: list[list[tuple[int, SuiteJob]]] = [[] for _ in range(processes)]
    loads = [0.0] * processes
    loads[1:] = [_STARTUP_WEIGHT] * (processes - 1)
    for index, job in sorted(enumerate(jobs), key=lambda item: -item[1].weight):
        lightest = loads.index(min(loads))
        shares[lightest].append((index, job))
        loads[lightest] += job.weight
    return [sorted(share, key=lambda item: item[0]) for share in shares]


_STARTUP_WEIGHT = 150.0
"""A worker's start-up (importing agentlab), in chat runs."""
_SPAWN = multiprocessing.get_context("spawn")
_worker_progress: Any = None


def _start_worker(progress: Any) -> None:
    global _worker_progress  # noqa: PLW0603 -- set once per worker process
    _worker_progress = progress


def _worker(
    share: list[tuple[int, SuiteJob]], path: Path, common: dict[str, Any]
) -> list[tuple[int, SuiteRun]]:
    """A worker's jobs, into its own metrics file."""

    def tell(result: RunResult, done: int, total: int) -> None:
        _worker_progress.put((result, done, total))

    with open_metrics(path) as metrics:
        return [(index, _run(job, metrics, common, tell)) for index, job in share]


class _Relay:
    """Hands the workers' progress to ``on_result`` from a thread of the calling process."""

    def __init__(self, progress: Any, on_result: OnResult | None) -> None:
        self._progress = progress
        self._on_result = on_result
        self._thread = threading.Thread(target=self._pump, name="agentlab-progress", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _pump(self) -> None:
        while True:
            try:
                item = self._progress.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            if self._on_result is not None:
                self._on_result(*item)
