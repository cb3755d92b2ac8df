"""Run suites on a Dask cluster: runs fan out as tasks, results go to a shared PostgreSQL.

When a suite or a live evaluation outgrows one machine, the runs go to a cluster that a
team already operates: a ``dask.distributed`` scheduler (``LocalCluster`` on one machine,
in tests and notebooks). What a cluster adds to :func:`agentlab.lab.runner.arun_suite`:

- **Runs fan out as tasks**, a few runs (``chunk_size``) each, so a chunk's runs share a
  worker's event loop (``concurrency`` at a time) while the cluster balances chunks.
- **Results and events go to PostgreSQL** as each run finishes
  (:class:`~agentlab.adapters.postgres_experiments.PostgresExperimentLog`), once per run:
  a chunk retried after its worker died skips the runs already recorded and reruns the
  rest, and rerunning this function resumes an experiment where it stopped.
- **Caps and the LLM budget hold across the cluster** when ``redis_url`` is given: every
  worker's executor takes its concurrency slots, daily and per-run counts and LLM requests
  and tokens from Redis (:mod:`agentlab.adapters.redis_limits`), so the systems see no more
  than the policy allows, however many workers there are.
- **A retried run commits nothing twice.** A live run's ids (and so its steps' idempotency
  keys) depend only on its experiment, task and repetition, and its world lives on a
  :class:`~agentlab.world.tenants.WorldTenants` server that every worker reaches: the second
  attempt's commits find the first attempt's keys and get the recorded answers back.

Workers need agentlab (with the ``cluster`` and ``postgres`` extras) and, to replay, the
cassettes at the same path. Suites travel with the tasks; tools (code) do not, so a custom
tool registry is refused.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agentlab.core.errors import ConfigError, MissingDependency

try:
    from distributed import Client, Future, as_completed, get_worker
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "running suites on a Dask cluster needs dask.distributed",
        hint="pip install 'agentlab[scale,postgres]'",
    ) from exc

from agentlab.adapters.postgres_experiments import PostgresExperimentLog
from agentlab.adapters.redis_limits import SharedLimits, open_shared_limits
from agentlab.lab.cassette_cache import default_cache_dir
from agentlab.lab.parallel import SuiteJob
from agentlab.lab.results import Experiment, ExperimentSpec, Mode, RunResult
from agentlab.lab.runner import (
    CASSETTES,
    OnResult,
    SuiteRun,
    SuiteRunner,
    compressed,
    experiment_spec,
    open_experiment,
    planned_runs,
)
from agentlab.lab.suite import Suite
from agentlab.policy import Policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterOptions:
    """How a cluster's workers run and where they keep what they share.

    Attributes:
        store_url: The PostgreSQL experiment log (``postgresql://...``).
        redis_url: Where caps and the LLM budget are shared; None gives each worker its own
            (so the cluster as a whole may exceed them: fine for replays, which send
            nothing, not for live runs against real systems).
        namespace: The prefix of every Redis key, to keep clusters apart.
        world_url: In ``live`` mode, a :class:`~agentlab.world.tenants.WorldTenants` server;
            None gives each run a world in its worker (a retried run then starts afresh).
        mode: ``replay``, ``upgrade`` or ``live`` (``record`` writes cassettes: run it on
            one machine).
        cassettes: The cassette library, at the same path on every worker.
        concurrency: Runs in flight at once in each chunk.
        chunk_size: Runs per Dask task.
        time_scale: In ``live`` mode with the simulator, how much faster than real time
            (:func:`agentlab.lab.runner.compressed`).
        model_base_url: An OpenAI-compatible endpoint for ``upgrade``/``live``; None runs
            the simulator in each worker.
        model_api_key_env: The variable holding the endpoint's key, on the workers.
        retries: How often a chunk that raised is tried again (a worker's death is
            retried by the scheduler, up to its ``allowed-failures``).
        lease_ttl_s: How long a concurrency slot stays taken after its worker stopped
            renewing it (it died): the wait before a dead worker's slots come back.
    """

    store_url: str
    redis_url: str | None = None
    namespace: str = "agentlab"
    world_url: str | None = None
    mode: Mode = "replay"
    cassettes: Path = CASSETTES
    concurrency: int = 4
    chunk_size: int = 8
    time_scale: float = 1.0
    model_base_url: str | None = None
    model_api_key_env: str = "OPENAI_API_KEY"
    retries: int = 2
    lease_ttl_s: float = 30.0


@dataclass(frozen=True)
class ClusterRun:
    """What a cluster made of some jobs: their experiments, and what the shared caps saw."""

    runs: list[SuiteRun]
    """One per job, in the jobs' order."""
    peak_in_flight: dict[str, int] = field(default_factory=dict)
    """The most calls each capped system had in flight at once, cluster-wide (from Redis);
    empty without ``redis_url``."""
    workers: dict[str, int] = field(default_factory=dict)
    """Runs recorded by each worker."""
    resumed: int = 0
    """Runs the experiments already held when this call began, so were not run again."""

    def caps_frame(self, policy: Policy) -> pd.DataFrame:
        """Each capped system's cap beside the most calls it had in flight, cluster-wide."""
        return pd.DataFrame(
            [
                {"system": system, "cap": limit.concurrency, "peak in flight": peak}
                for system, peak in self.peak_in_flight.items()
                if (limit := policy.rate_limits.tools.get(system)) is not None
            ],
            columns=["system", "cap", "peak in flight"],
        )

    def workers_frame(self) -> pd.DataFrame:
        """The runs each worker recorded."""
        return pd.DataFrame(sorted(self.workers.items()), columns=["worker", "runs recorded"])


@dataclass(frozen=True)
class _Chunk:
    """Some runs of one experiment: what a Dask task carries to its worker."""

    suite: Suite
    spec: ExperimentSpec
    experiment_id: str
    runs: tuple[tuple[str, int], ...]
    options: ClusterOptions


def run_on_cluster(
    jobs: Sequence[SuiteJob],
    *,
    client: Client | str,
    options: ClusterOptions,
    label: str = "",
    resume: bool = True,
    tasks: Sequence[str] | None = None,
    repeats: int = 1,
    on_result: OnResult | None = None,
) -> ClusterRun:
    """Run every job's suite on a Dask cluster, the runs spread over its workers.

    Args:
        jobs: What to run: suite x configuration x model.
        client: A Dask client, or a scheduler's address (``tcp://host:8786``).
        options: Where results and shared caps go, and how the runs run.
        label: Stored with each experiment.
        resume: Carry on each job's latest unfinished experiment with the same spec.
        tasks: Only these task ids of each suite (all if None).
        repeats: Runs per task.
        on_result: Told of each finished run, as its chunk comes back.

    Returns:
        The experiments and their runs, read back from PostgreSQL.

    Raises:
        ConfigError: a job cannot run on a cluster (``record`` mode), or an option is wrong.
        Exception: the first chunk that failed for good; every run that finished is in the
            store, and a rerun with ``resume`` carries on.
    """
    if options.mode == "record":
        raise ConfigError(
            "record writes cassettes on the machine that runs it; run it on one machine",
            hint="agentlab run --suite ... --mode record",
        )
    if options.concurrency < 1 or options.chunk_size < 1:
        raise ConfigError("concurrency and chunk_size must be at least 1")
    call = uuid.uuid4().hex[:8]  # a rerun's chunks are new tasks, whatever they hold
    with _client(client) as dask, PostgresExperimentLog(options.store_url) as log:
        planned: list[tuple[Experiment, list[tuple[str, int]], list[tuple[str, int]]]] = []
        futures: list[Future] = []
        for job in jobs:
            spec = experiment_spec(
                job.suite,
                config=job.config,
                model=job.model,
                mode=options.mode,
                repeats=repeats,
                model_base_url=options.model_base_url,
                world_url=options.world_url,
            )
            chosen = [job.suite.task(t) for t in tasks] if tasks else list(job.suite.tasks)
            keys = [(task.id, r) for task, r in planned_runs(chosen, repeats)]
            experiment, done = open_experiment(log, spec, label, resume)
            todo = [key for key in keys if key not in done]
            planned.append((experiment, keys, todo))
            for start in range(0, len(todo), options.chunk_size):
                chunk = _Chunk(
                    job.suite,
                    spec,
                    experiment.experiment_id,
                    tuple(todo[start : start + options.chunk_size]),
                    options,
                )
                futures.append(
                    dask.submit(
                        run_chunk,
                        chunk,
                        key=f"agentlab-{experiment.experiment_id}-{call}-{start}",
                        pure=False,
                        retries=options.retries,
                    )
                )
        total = sum(len(todo) for _, _, todo in planned)
        try:
            failures = _gather(futures, total, on_result)
        except BaseException:
            # Chunks not started are dropped; those running finish and are recorded.
            dask.cancel(futures)
            raise
        for experiment, _, todo in planned:
            unfinished = set(todo) - log.finished_runs(experiment.experiment_id)
            if not unfinished:
                log.finish_experiment(experiment.experiment_id)
        if failures:
            first = failures[0]
            first.add_note(
                f"agentlab: {len(failures)} chunk(s) of runs failed; the runs that finished "
                "are in the store, and a rerun with resume carries on"
            )
            raise first
        runs = []
        for experiment, keys, _ in planned:
            by_key = {(r.task_id, r.repetition): r for r in log.results(experiment.experiment_id)}
            runs.append(SuiteRun(experiment, [by_key[k] for k in keys if k in by_key]))
        ids = [experiment.experiment_id for experiment, _, _ in planned]
        resumed = sum(len(keys) - len(todo) for _, keys, todo in planned)
        return ClusterRun(runs, _peaks(options, jobs), log.recorded_by(ids), resumed)


def _gather(futures: list[Future], total: int, on_result: OnResult | None) -> list[Exception]:
    """Wait for every chunk, telling ``on_result`` of each run; return the chunks' failures."""
    failures: list[Exception] = []
    done = 0
    for future in as_completed(futures):
        try:
            results: list[RunResult] = future.result()
        except Exception as exc:  # raised by the caller once every chunk has ended
            logger.warning("a chunk of runs failed: %s", exc)
            failures.append(exc)
            continue
        for result in results:
            done += 1
            if on_result is not None:
                on_result(result, done, total)
    return failures


def _peaks(options: ClusterOptions, jobs: Sequence[SuiteJob]) -> dict[str, int]:
    """The cluster-wide peaks of the capped systems, from Redis."""
    if options.redis_url is None or not jobs:
        return {}
    policy = jobs[0].suite.loaded_policy
    limits = open_shared_limits(options.redis_url, policy, namespace=options.namespace)
    try:
        return {
            system: limits.caps.peak_in_flight(system)
            for system, limit in policy.rate_limits.tools.items()
            if limit.concurrency is not None
        }
    finally:
        limits.close()


@contextmanager
def _client(client: Client | str) -> Iterator[Client]:
    if isinstance(client, Client):
        yield client
        return
    with Client(client) as connected:
        yield connected


# --- on a worker ------------------------------------------------------------------------


def run_chunk(chunk: _Chunk) -> list[RunResult]:
    """Run a chunk's runs that are not recorded yet, recording each as it finishes.

    Runs in a Dask worker. What a worker opens once (the experiment log, the shared limits,
    a suite's runner with its knowledge base) it keeps for the chunks that follow.

    Returns:
        The runs this call carried out (not those an earlier attempt recorded).
    """
    context = _worker_context(chunk)
    done = context.log.finished_runs(chunk.experiment_id)
    todo = [key for key in chunk.runs if key not in done]
    if not todo:
        return []
    return context.run(_run_all(context, chunk, todo))


async def _run_all(
    context: _WorkerContext, chunk: _Chunk, todo: list[tuple[str, int]]
) -> list[RunResult]:
    gate = asyncio.Semaphore(chunk.options.concurrency)
    runner = context.runner(chunk)

    async def one(task_id: str, repetition: int) -> RunResult:
        async with gate:
            result, events = await runner.run(chunk.suite.task(task_id), repetition)
        # Recorded at once: a worker that dies loses only the runs still in flight.
        await asyncio.to_thread(context.log.record_runs, chunk.experiment_id, [(result, events)])
        return result

    return list(await asyncio.gather(*(one(t, r) for t, r in todo)))


class _WorkerContext:
    """What one worker process keeps between chunks."""

    def __init__(self, options: ClusterOptions, worker: str) -> None:
        self.log = PostgresExperimentLog(options.store_url, recorded_by=worker)
        self.options = options
        self._limits: SharedLimits | None = None
        self._runners: dict[str, SuiteRunner] = {}
        # One event loop for the process's chunks, however many task threads the worker
        # has: a suite's runner, caps and budget are made once and used on that loop only.
        self._loop = asyncio.new_event_loop()
        threading.Thread(
            target=self._loop.run_forever, name="agentlab-cluster-runs", daemon=True
        ).start()

    def run(self, runs: Coroutine[Any, Any, list[RunResult]]) -> list[RunResult]:
        """Run ``runs`` on the process's loop and wait for them (from a task's thread)."""
        return asyncio.run_coroutine_threadsafe(runs, self._loop).result()

    def runner(self, chunk: _Chunk) -> SuiteRunner:
        runner = self._runners.get(chunk.experiment_id)
        if runner is None:
            limits = self.limits(chunk.suite, chunk.options.time_scale)
            runner = SuiteRunner(
                chunk.suite,
                chunk.spec,
                cassettes=chunk.options.cassettes,
                cassette_cache=default_cache_dir(),
                model_base_url=chunk.options.model_base_url,
                model_api_key_env=chunk.options.model_api_key_env,
                world_url=chunk.options.world_url,
                time_scale=chunk.options.time_scale,
                caps=limits.caps if limits else None,
                budget=limits.budget if limits else None,
            )
            runner.experiment_id = chunk.experiment_id
            self._runners[chunk.experiment_id] = runner
        return runner

    def limits(self, suite: Suite, time_scale: float) -> SharedLimits | None:
        """The caps and budget shared through Redis (live runs only need them)."""
        if self.options.redis_url is None or self.options.mode != "live":
            return None
        if self._limits is None:
            policy = compressed(suite.loaded_policy, time_scale, self.options.model_base_url)
            self._limits = open_shared_limits(
                self.options.redis_url,
                policy,
                namespace=self.options.namespace,
                lease_ttl_s=self.options.lease_ttl_s,
            )
        return self._limits


_contexts: dict[ClusterOptions, _WorkerContext] = {}
_contexts_lock = threading.Lock()


def _worker_context(chunk: _Chunk) -> _WorkerContext:
    with _contexts_lock:
        context = _contexts.get(chunk.options)
        if context is None:
            context = _contexts[chunk.options] = _WorkerContext(chunk.options, _worker_name())
        return context


def _worker_name() -> str:
    try:
        return str(get_worker().name)
    except ValueError:  # not in a worker: run_chunk called directly
        return "local"
