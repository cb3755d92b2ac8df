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
- **A retried run commits nothing twice**, as long as it makes the same calls. A live run's
  ids depend only on its experiment, task and repetition, and a step's idempotency key on
  the run, its position, the tool and the arguments; its world lives on a
  :class:`~agentlab.world.tenants.WorldTenants` server that every worker reaches. A second
  attempt that repeats a commit finds the first attempt's key and gets the recorded answer
  back. (The seeded simulator repeats itself; a real model may choose other arguments, and
  then it is another write.)

Workers need agentlab (with the ``scale`` and ``postgres`` extras) and, to replay, the
cassettes at the same path. Suites travel with the tasks; tools are code and do not, so the
runs use the built-in tools (a job has no way to name others).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agentlab.core.errors import AgentlabError, BackendError, ConfigError, MissingDependency
from agentlab.core.events import Event

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

    store_url: str = field(repr=False)  # URLs may carry passwords: never in a repr
    redis_url: str | None = field(default=None, repr=False)
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
    """The most calls each capped system had in flight at once, cluster-wide (from Redis,
    for the namespace); empty without ``redis_url`` or in a replay."""
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
    for job in jobs:  # a wrong option fails here, not on every worker after the start
        compressed(job.suite.loaded_policy, options.time_scale, options.model_base_url)
    call = uuid.uuid4().hex[:8]  # a rerun's chunks are new tasks, whatever they hold
    with (
        _shared_limits(options, jobs) as shared,
        _client(client) as dask,
        PostgresExperimentLog(options.store_url) as log,
    ):
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
        for experiment, keys, _ in planned:
            # Finished once every run is recorded, errored ones too, as arun_suite does.
            if log.run_counts(experiment.experiment_id).runs >= len(keys):
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
            now = log.experiment(experiment.experiment_id)  # finished by now, or not
            runs.append(SuiteRun(now, [by_key[k] for k in keys if k in by_key]))
        ids = [experiment.experiment_id for experiment, _, _ in planned]
        resumed = sum(len(keys) - len(todo) for _, keys, todo in planned)
        return ClusterRun(runs, _peaks(shared, jobs), log.recorded_by(ids), resumed)


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


@contextmanager
def _shared_limits(
    options: ClusterOptions, jobs: Sequence[SuiteJob]
) -> Iterator[SharedLimits | None]:
    """Redis, opened before any run: an unreachable one fails now, not after the suite.

    Only live runs take the shared caps (a replay or an upgrade plays the tools from
    cassettes); upgrade runs share the LLM budget.
    """
    if options.redis_url is None or options.mode not in _SHARING or not jobs:
        yield None
        return
    limits = open_shared_limits(
        options.redis_url, jobs[0].suite.loaded_policy, namespace=options.namespace
    )
    try:
        yield limits
    finally:
        limits.close()


def _peaks(shared: SharedLimits | None, jobs: Sequence[SuiteJob]) -> dict[str, int]:
    """The cluster-wide peaks of every job's capped systems, from Redis.

    A peak is the namespace's since its peaks were last reset, so it covers other calls
    sharing the namespace too. A failure to read them is logged, never raised: the runs are
    recorded by then.
    """
    if shared is None:
        return {}
    systems = sorted(
        {
            system
            for job in jobs
            for system, limit in job.suite.loaded_policy.rate_limits.tools.items()
            if limit.concurrency is not None
        }
    )
    try:
        return {system: shared.caps.peak_in_flight(system) for system in systems}
    except AgentlabError as exc:
        logger.warning("could not read the cluster-wide peaks from Redis: %s", exc)
        return {}


@contextmanager
def _client(client: Client | str) -> Iterator[Client]:
    if isinstance(client, Client):
        yield client
        return
    try:
        connected = Client(client, timeout=_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach a Dask scheduler at {client}: {exc}",
            hint="start `dask scheduler` there (and `dask worker <address>` on each "
            "machine), or fix --scheduler / AGENTLAB_DASK_SCHEDULER",
        ) from None
    with connected:
        yield connected


_CONNECT_TIMEOUT_S = 30
_SHARING = ("live", "upgrade")
"""Modes whose runs reach a live model (the budget) or live systems (the caps)."""


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
    """Run ``todo`` ``concurrency`` at a time; if one fails, cancel the rest before raising.

    A chunk that raised is retried by Dask, so none of its runs may go on behind it.
    """
    gate = asyncio.Semaphore(chunk.options.concurrency)
    runner = context.runner(chunk)

    async def one(task_id: str, repetition: int) -> RunResult:
        async with gate:
            result, events = await runner.run(chunk.suite.task(task_id), repetition)
        # Recorded at once: a worker that dies loses only the runs still in flight.
        await _record(context.log, chunk.experiment_id, result, events)
        return result

    running = [asyncio.ensure_future(one(t, r)) for t, r in todo]
    try:
        return list(await asyncio.gather(*running))
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise


async def _record(
    log: PostgresExperimentLog, experiment_id: str, result: RunResult, events: Sequence[Event]
) -> None:
    """Record one run, trying again on a passing database failure before giving up."""
    for attempt in range(_RECORD_ATTEMPTS):
        try:
            await asyncio.to_thread(log.record_runs, experiment_id, [(result, events)])
            return
        except BackendError as exc:
            if attempt == _RECORD_ATTEMPTS - 1:
                raise
            logger.warning("recording %s failed (%s); trying again", result.task_id, exc)
            await asyncio.sleep(_RECORD_BACKOFF_S * 2**attempt)


_RECORD_ATTEMPTS = 4
_RECORD_BACKOFF_S = 0.5
_RUNNERS_KEPT = 4
"""Suites' runners a worker keeps (one per experiment); the oldest is closed past this."""


@dataclass(frozen=True)
class _Resources:
    """What a worker's connections depend on: chunks that agree share them."""

    store_url: str
    redis_url: str | None
    namespace: str
    lease_ttl_s: float


class _WorkerContext:
    """What one worker process keeps between chunks: connections, runners, an event loop."""

    def __init__(self, resources: _Resources, worker: str) -> None:
        self.resources = resources
        self.log = PostgresExperimentLog(resources.store_url, recorded_by=worker)
        self._limits: dict[tuple[str, float], SharedLimits] = {}
        self._runners: OrderedDict[str, SuiteRunner] = OrderedDict()
        # One event loop for the process's chunks, however many task threads the worker
        # has: a suite's runner, caps and budget are made once and used on that loop only.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="agentlab-cluster-runs", daemon=True
        )
        self._thread.start()

    def run(self, runs: Coroutine[Any, Any, list[RunResult]]) -> list[RunResult]:
        """Run ``runs`` on the process's loop and wait for them (from a task's thread)."""
        return asyncio.run_coroutine_threadsafe(runs, self._loop).result()

    def runner(self, chunk: _Chunk) -> SuiteRunner:
        """The experiment's runner, made on its first chunk here (called on the loop)."""
        runner = self._runners.get(chunk.experiment_id)
        if runner is not None:
            self._runners.move_to_end(chunk.experiment_id)
            return runner
        options = chunk.options
        limits = self._shared(chunk)
        runner = SuiteRunner(
            chunk.suite,
            chunk.spec,
            cassettes=options.cassettes,
            cassette_cache=default_cache_dir(),
            model_base_url=options.model_base_url,
            model_api_key_env=options.model_api_key_env,
            world_url=options.world_url,
            time_scale=options.time_scale,
            # live runs reach the systems: the caps; upgrade and live reach the model
            caps=limits.caps if limits and options.mode == "live" else None,
            budget=limits.budget if limits else None,
        )
        runner.experiment_id = chunk.experiment_id
        self._runners[chunk.experiment_id] = runner
        while len(self._runners) > _RUNNERS_KEPT:
            _, oldest = self._runners.popitem(last=False)
            oldest.close()
        return runner

    def _shared(self, chunk: _Chunk) -> SharedLimits | None:
        """The caps and budget a suite's policy sets, shared through Redis."""
        options = chunk.options
        if self.resources.redis_url is None or options.mode not in _SHARING:
            return None
        key = (chunk.suite.name, options.time_scale)
        if key not in self._limits:
            policy = compressed(
                chunk.suite.loaded_policy, options.time_scale, options.model_base_url
            )
            self._limits[key] = open_shared_limits(
                self.resources.redis_url,
                policy,
                namespace=self.resources.namespace,
                lease_ttl_s=self.resources.lease_ttl_s,
            )
        return self._limits[key]

    def close(self) -> None:
        """Close the runners, the Redis and PostgreSQL connections, and stop the loop."""
        for runner in self._runners.values():
            runner.close()
        for limits in self._limits.values():
            limits.close()
        self.log.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


_contexts: dict[_Resources, _WorkerContext] = {}
_contexts_lock = threading.Lock()


def _worker_context(chunk: _Chunk) -> _WorkerContext:
    options = chunk.options
    resources = _Resources(
        options.store_url, options.redis_url, options.namespace, options.lease_ttl_s
    )
    with _contexts_lock:
        context = _contexts.get(resources)
        if context is None:
            if not _contexts:
                atexit.register(_close_contexts)
            context = _contexts[resources] = _WorkerContext(resources, _worker_name())
        return context


def _close_contexts() -> None:
    """At the worker's exit: let go of every connection and loop it opened."""
    with _contexts_lock:
        for context in _contexts.values():
            try:
                context.close()
            except Exception:  # at exit, one failure must not keep the others open
                logger.exception("could not close a worker's connections")
        _contexts.clear()


def _worker_name() -> str:
    try:
        return str(get_worker().name)
    except ValueError:  # not in a worker: run_chunk called directly
        return "local"
