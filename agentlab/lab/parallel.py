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
        """Its expected cost, in chat runs (a task run several times counts that often)."""
        runs = sum(max(1, task.repeats) for task in self.suite.tasks)
        return runs * CONFIG_WEIGHT.get(self.config, 1.5)


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
    failed: list[tuple[list[SuiteJob], BaseException]] = []
    with tempfile.TemporaryDirectory(prefix="agentlab-parallel-") as folder:
        relay.start()
        try:
            with ProcessPoolExecutor(
                max_workers=processes - 1,
                mp_context=_SPAWN,
                initializer=_start_worker,
                initargs=(progress,),
            ) as pool:
                planned = [
                    (Path(folder) / f"worker-{n}.duckdb", share)
                    for n, share in enumerate(shares[1:], start=1)
                ]
                submitted = [
                    (path, share, pool.submit(_worker, share, path, common))
                    for path, share in planned
                ]
                try:
                    for index, job in shares[0]:
                        results[index] = _run(job, metrics, common, on_result)
                except BaseException as exc:
                    failed.append(([job for i, job in shares[0] if i not in results], exc))
                    for *_, future in submitted:
                        future.cancel()
                # Every worker is waited for, and every one that finished is kept, whatever
                # another did: a run that finished is in the store.
                for path, share, future in submitted:
                    try:
                        runs = future.result()
                    except BaseException as exc:  # reported below, with its jobs
                        failed.append(([job for _, job in share], exc))
                        continue
                    results.update(runs)
                    metrics.absorb(path)
        finally:
            relay.stop()  # after the pool has shut down: the workers' last words are in
    if failed:
        raise _failure(failed)
    relay.raise_failure()
    return [results[index] for index in range(len(jobs))]


def _failure(failed: list[tuple[list[SuiteJob], BaseException]]) -> BaseException:
    """The first failure, saying which jobs it cost (the other jobs' runs are stored)."""
    _, first = failed[0]
    if isinstance(first, KeyboardInterrupt | SystemExit) or not isinstance(first, Exception):
        return first
    lost = ", ".join(f"{j.suite.name}/{j.config}/{j.model}" for jobs_, _ in failed for j in jobs_)
    first.add_note(f"agentlab: these jobs did not finish: {lost}; the others are in the store")
    return first


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
    """Hands the workers' progress to ``on_result`` from a thread of the calling process.

    ``on_result`` is therefore called from two threads (this one and the caller's own
    runs). If it raises, the first error is kept and raised once the jobs are done, and the
    queue is still drained: a worker cannot exit while what it sent is unread.
    """

    def __init__(self, progress: Any, on_result: OnResult | None) -> None:
        self._progress = progress
        self._on_result = on_result
        self._thread = threading.Thread(target=self._pump, name="agentlab-progress", daemon=True)
        self._stopping = threading.Event()
        self._error: Exception | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def raise_failure(self) -> None:
        """Raise what ``on_result`` raised in this thread, if it did."""
        if self._error is not None:
            raise self._error

    def _pump(self) -> None:
        while True:
            try:
                item = self._progress.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            if self._on_result is None or self._error is not None:
                continue
            try:
                self._on_result(*item)
            except Exception as exc:  # raised by raise_failure()
                self._error = exc
