"""Run a suite under one configuration and one model, in one of the three modes.

- ``record``: the model and the tools' systems are live (the simulator and the sandbox world
  in-process by default); every exchange is written to the run's cassette.
- ``replay``: both are played from the cassettes; nothing is sent anywhere. Deterministic:
  ids are seeded by task, and time is each run's :class:`VirtualClock`, moved only by the
  latencies the responses carry, so two replays give the same events and metrics.
- ``upgrade``: the model is live (a candidate), the tools are played from the *baseline*
  model's cassettes. A tool call the recording lacks is not sent; it becomes a side-effect
  diff (a :class:`Divergence`).
- ``live``: the model and the tools' systems are live, and nothing is written to a cassette:
  a live evaluation, paced by the tools' caps and the LLM budget shared by all its runs (or,
  on a cluster, by all its machines: :mod:`agentlab.lab.cluster`). Latencies are really
  waited (compressed ``time_scale`` times for the simulator and the sandbox world, whose
  latencies are modelled). Each run has a world of its own, in-process or on a
  :class:`~agentlab.world.tenants.WorldTenants` server at ``world_url``.

Runs go concurrently (``concurrency`` at a time), each with its own world, store, clients and
cassette. With a metrics store, finished runs are written a batch at a time (and whatever is
held when the suite stops), so an interrupted suite resumes where it stopped.
:mod:`agentlab.lab.parallel` spreads several suites x configurations x models over processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from agentlab._version import __version__
from agentlab.adapters import OpenAIChatModel
from agentlab.core.clock import SystemClock, VirtualClock
from agentlab.core.errors import AgentlabError, CassetteError, ConfigError
from agentlab.core.events import Event
from agentlab.core.ids import IdFactory
from agentlab.lab.cassette_cache import default_cache_dir
from agentlab.lab.cassettes import (
    SAME_EFFECT,
    Cassette,
    CassetteMeta,
    CassetteTransport,
    latency_ms_of,
    load_cassette,
    unused_divergences,
)
from agentlab.lab.conversation import (
    Conversed,
    aconverse,
    check_conversation,
    conversation_fields,
    measure_conversation,
    repeats_max,
)
from agentlab.lab.graders import LeakDetector, committed_writes, grade, measure
from agentlab.lab.judge import judge_run
from agentlab.lab.live import SIM_BASE_URL, SIM_PREFIX, open_knowledge, open_live_agent
from agentlab.lab.requester import RequesterTurn
from agentlab.lab.results import (
    MODES,
    CheckResult,
    Divergence,
    Experiment,
    ExperimentSpec,
    Mode,
    RunResult,
)
from agentlab.lab.reviewer import suite_reviewer
from agentlab.lab.suite import Suite, Task, load_suite
from agentlab.llm import LLMBudget, RateBudget
from agentlab.llm.sim import build_sim_app
from agentlab.policy import Policy
from agentlab.rag import Document, Retriever, load_corpus
from agentlab.runtime import ToolCaps
from agentlab.security.metrics import security_counts
from agentlab.store import MemoryEventStore, RunState, project_run
from agentlab.tools import ToolRegistry
from agentlab.world import World, build_world_app
from agentlab.world.fixture import kb_folder_of
from agentlab.world.tenants import tenant_url

logger = logging.getLogger(__name__)

CASSETTES = Path(__file__).parents[2] / "cassettes"
"""The cassettes shipped with agentlab (``cassettes/`` at the repository's root)."""
SIMULATOR_NOTE = "recorded from agentlab's offline simulator, not from a vendor's model"


class ExperimentLog(Protocol):
    """Where experiments and their runs are kept (``agentlab.lab.metrics.MetricsStore``)."""

    def start_experiment(self, spec: ExperimentSpec, label: str = "") -> Experiment:
        """Open a new experiment."""
        ...

    def unfinished_experiment(self, spec: ExperimentSpec) -> Experiment | None:
        """The latest experiment with ``spec`` that did not finish, to resume."""
        ...

    def finished_runs(self, experiment_id: str) -> set[tuple[str, int]]:
        """The (task, repetition) pairs the experiment already holds."""
        ...

    def results(self, experiment_id: str) -> list[RunResult]:
        """The experiment's graded runs."""
        ...

    def record_runs(
        self, experiment_id: str, runs: Sequence[tuple[RunResult, Sequence[Event]]]
    ) -> None:
        """Keep finished runs and their events, all or none of them (one transaction)."""
        ...

    def finish_experiment(self, experiment_id: str) -> None:
        """Mark the experiment finished."""
        ...


WRITE_BATCH = 32
"""Finished runs written to the metrics store per transaction. A transaction costs more than
a replayed run's rows; a process killed outright loses at most this many runs, which a
resume runs again."""

OnResult = Callable[[RunResult, int, int], None]
"""Told of each finished run, with how many are done and how many there are."""


@dataclass(frozen=True)
class SuiteRun:
    """A suite's experiment and its graded runs, in task order."""

    experiment: Experiment
    results: list[RunResult]
    recorded: list[RunResult] = field(default_factory=list)
    """In replay and upgrade: the same runs as graded when their cassettes were recorded."""

    @property
    def success_rate(self) -> float:
        """The share of runs that met every expectation."""
        return sum(r.success for r in self.results) / len(self.results) if self.results else 0.0


@cache
def code_version() -> str:
    """The code version an experiment ran: the checkout's commit, or the package's version.

    Uncommitted changes add ``-dirty-<hash of the changes>``, so two different sets of
    changes are two versions.
    """
    root = Path(__file__).parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        changes = subprocess.run(
            ["git", "diff", "HEAD"],
            cwd=root, capture_output=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return __version__
    if not changes:
        return commit
    # Two different sets of uncommitted changes are two code versions.
    return f"{commit}-dirty-{hashlib.sha256(changes).hexdigest()[:8]}"


def cassette_path(
    cassettes: Path, suite: str, config: str, model: str, task_id: str, *, repetition: int = 0
) -> Path:
    """Where a run's cassette lives: ``<cassettes>/<suite>/<config>/<model>/<task>.yaml``.

    The n-th repetition after the first is ``<task>.r<n>.yaml``.
    """
    name = task_id if repetition == 0 else f"{task_id}.r{repetition}"
    return cassettes / suite / config / model / f"{name}.yaml"


def run_suite(suite: Suite | str | Path, **options: Any) -> SuiteRun:
    """:func:`arun_suite` for code that is not async (scripts, the CLI, a notebook's cell).

    Where an event loop is already running (Jupyter runs one), the suite runs on a loop of
    its own in a helper thread, and this call waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_suite(suite, **options))
    return _on_a_loop_of_its_own(arun_suite(suite, **options))


def _on_a_loop_of_its_own(suite_run: Coroutine[Any, Any, SuiteRun]) -> SuiteRun:
    """Run ``suite_run`` on a new event loop in a helper thread, and wait for it.

    An interrupt (Jupyter's "interrupt kernel") while waiting cancels the suite, which keeps
    the runs it finished, and is raised once the suite has stopped.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(suite_run)

    def drive() -> SuiteRun:
        try:
            return loop.run_until_complete(task)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agentlab-suite") as pool:
        running = pool.submit(drive)
        try:
            return running.result()
        except BaseException:
            if not running.done():
                loop.call_soon_threadsafe(task.cancel)
                concurrent.futures.wait([running])
            raise


async def arun_suite(
    suite: Suite | str | Path,
    *,
    config: str,
    model: str,
    mode: Mode = "replay",
    metrics: ExperimentLog | None = None,
    cassettes: Path = CASSETTES,
    cassette_cache: Path | None = None,
    repeats: int = 1,
    concurrency: int = 4,
    tasks: Sequence[str] | None = None,
    baseline_model: str | None = None,
    model_base_url: str | None = None,
    model_api_key_env: str = "OPENAI_API_KEY",
    resume: bool = True,
    label: str = "",
    on_result: OnResult | None = None,
    tools: ToolRegistry | None = None,
    world_url: str | None = None,
    time_scale: float = 1.0,
    caps: ToolCaps | None = None,
    budget: RateBudget | None = None,
) -> SuiteRun:
    """Run every task of ``suite`` (``repeats`` times) with ``config`` and ``model``.

    Args:
        suite: A loaded suite, or a suite's name or path.
        config: ``chat_rag``, ``single`` or ``multi``.
        model: The model: a simulator profile (``sim-large``) or an endpoint's model name.
        mode: ``replay``, ``record``, ``upgrade`` or ``live``.
        metrics: Where the experiment and each run are written as they finish; None keeps
            them in memory only (and nothing can be resumed).
        cassettes: The cassette library's root.
        cassette_cache: Where parsed cassettes are kept so that the next replay does not
            parse their YAML again (:mod:`agentlab.lab.cassette_cache`); None uses
            ``<AGENTLAB_HOME>/cache/cassettes``, and ``AGENTLAB_CASSETTE_CACHE=off`` turns
            it off.
        repeats: Runs per task; each repetition has its own seed (for pass^k).
        concurrency: Runs in flight at once.
        tasks: Only these task ids (all if None).
        baseline_model: In ``upgrade`` mode, whose cassettes the tools are played from
            (the suite's ``baseline_model`` by default).
        model_base_url: An OpenAI-compatible endpoint for ``record``/``upgrade``; None runs
            the simulator in-process.
        model_api_key_env: The variable that holds the endpoint's key.
        resume: Continue the latest unfinished experiment with the same spec, skipping the
            runs it already holds.
        label: Stored with the experiment (``nightly``, a notebook's name).
        on_result: Told of each finished run (the CLI's progress bar).
        tools: The agent's tools (the built-in ones if None): a changed tool replayed
            against the recordings shows what the change does to the suite.
        world_url: In ``live`` mode, a :class:`~agentlab.world.tenants.WorldTenants` server
            (``agentlab world serve --tenants``) where each run gets a world of its own; None
            makes each run's world in-process.
        time_scale: In ``live`` mode with the simulator, how many times faster than real
            time to run: modelled latencies are divided by it and the policy's LLM limits
            per minute multiplied by it, so every ratio (and the share of the caps' bound a
            run reaches) is as it would be in real time. 1 with a real endpoint.
        caps: In ``live`` mode, the tools' caps shared by the runs (on a cluster, Redis-backed
            ones shared by every machine); None makes one set for this suite from its policy.
        budget: In ``live`` mode, the LLM budget shared likewise; None makes one for this
            suite from its policy.

    Raises:
        ConfigError: an unknown mode, configuration, task or model.
    """
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    if concurrency < 1:
        raise ConfigError("concurrency must be at least 1")
    spec = experiment_spec(
        suite,
        config=config,
        model=model,
        mode=mode,
        repeats=repeats,
        baseline_model=baseline_model,
        model_base_url=model_base_url,
        world_url=world_url,
    )
    chosen = [suite.task(task_id) for task_id in tasks] if tasks else list(suite.tasks)
    # Built first: a broken fixture or corpus fails here, before an experiment exists.
    runner = SuiteRunner(
        suite,
        spec,
        cassettes=cassettes,
        cassette_cache=cassette_cache or default_cache_dir(),
        model_base_url=model_base_url,
        model_api_key_env=model_api_key_env,
        tools=tools,
        world_url=world_url,
        time_scale=time_scale,
        caps=caps,
        budget=budget,
    )
    experiment, done = open_experiment(metrics, spec, label, resume)
    runner.experiment_id = experiment.experiment_id
    todo = [(t, r) for t, r in planned_runs(chosen, repeats) if (t.id, r) not in done]
    finished: dict[tuple[str, int], RunResult] = {}
    if metrics is not None and done:
        finished = {
            (r.task_id, r.repetition): r
            for r in metrics.results(experiment.experiment_id)
            if (r.task_id, r.repetition) in done
        }
    total = len(todo) + len(finished)
    gate = asyncio.Semaphore(concurrency)
    writer = _BatchWriter(metrics, experiment.experiment_id)

    async def one(task: Task, repetition: int) -> None:
        async with gate:
            result, events = await runner.run(task, repetition)
        writer.add(result, events)
        finished[(task.id, repetition)] = result
        if on_result is not None:
            on_result(result, len(finished), total)

    try:
        with _old_objects_left_alone():
            await _all_or_cancel([one(t, r) for t, r in todo])
    except BaseException:
        try:
            writer.flush()  # an interrupted suite keeps every run it finished, for resume
        except Exception:
            logger.exception("could not keep the runs finished before the suite stopped")
        raise
    else:
        writer.flush()
    finally:
        runner.close()
    if metrics is not None:
        metrics.finish_experiment(experiment.experiment_id)
    keys = [(t.id, r) for t, r in planned_runs(chosen, repeats)]
    return SuiteRun(
        experiment,
        [finished[k] for k in keys if k in finished],
        [runner.recorded[k] for k in keys if k in runner.recorded],
    )


def experiment_spec(
    suite: Suite,
    *,
    config: str,
    model: str,
    mode: Mode,
    repeats: int = 1,
    baseline_model: str | None = None,
    model_base_url: str | None = None,
    world_url: str | None = None,
) -> ExperimentSpec:
    """What identifies an experiment of ``suite``, after checking that it can be run.

    Raises:
        ConfigError: an unknown mode or configuration, a model that is neither the
            simulator's nor at an endpoint, repeats below 1, or a world URL outside ``live``.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    if config not in suite.configs:
        raise ConfigError(
            f"suite {suite.name!r} does not run configuration {config!r}",
            hint=f"its configurations: {', '.join(suite.configs)}",
        )
    if model_base_url is None and not model.startswith(SIM_PREFIX) and mode != "replay":
        raise ConfigError(
            f"model {model!r} is not one of the simulator's profiles, and no endpoint was given",
            hint="pass model_base_url (--model-url) for a real endpoint, or use sim-large / "
            "sim-small",
        )
    if repeats < 1:
        raise ConfigError("repeats must be at least 1")
    if world_url is not None and mode != "live":
        raise ConfigError(
            f"a world URL is for live runs, not {mode!r} ones",
            hint="replay, record and upgrade give each run a world of their own; use "
            "mode='live' with world_url",
        )
    baseline = baseline_model or suite.baseline_model
    return ExperimentSpec(
        suite=suite.name,
        config=config,
        model=model,
        mode=mode,
        code_version=code_version(),
        repeats=repeats,
        seed=suite.seed,
        baseline_model=baseline if mode == "upgrade" else None,
    )


def compressed(policy: Policy, time_scale: float, model_base_url: str | None = None) -> Policy:
    """``policy`` for runs ``time_scale`` times faster than real time: LLM limits scaled.

    Only the simulator's time can be compressed; a real endpoint's limits are its own.

    Raises:
        ConfigError: ``time_scale`` is not positive, or not 1 with a real endpoint.
    """
    if not time_scale > 0:
        raise ConfigError(f"time_scale must be above 0, not {time_scale}")
    if time_scale == 1 or policy.rate_limits.llm is None:
        return policy
    if model_base_url is not None:
        raise ConfigError(
            "time_scale compresses the simulator's modelled time; a real endpoint runs in "
            "real time",
            hint="leave time_scale at 1 with model_base_url",
        )
    llm = policy.rate_limits.llm
    faster = llm.model_copy(
        update={
            # slowed down (below 1), a limit still lets one request a minute through
            "requests_per_minute": max(1, round(llm.requests_per_minute * time_scale)),
            "tokens_per_minute": max(1, round(llm.tokens_per_minute * time_scale)),
        }
    )
    limits = policy.rate_limits.model_copy(update={"llm": faster})
    return policy.model_copy(update={"rate_limits": limits})


def planned_runs(tasks: Sequence[Task], repeats: int) -> list[tuple[Task, int]]:
    """The (task, repetition) pairs an experiment runs, repetition by repetition.

    A task's own ``repeats`` (a multi-turn task's pass^k) raises the suite's for that task.
    """
    return [(t, r) for r in range(repeats_max(tasks, repeats)) for t in tasks
            if r < max(repeats, t.repeats)]  # fmt: skip


class _BatchWriter:
    """Writes finished runs to the metrics store :data:`WRITE_BATCH` at a time."""

    def __init__(self, metrics: ExperimentLog | None, experiment_id: str) -> None:
        self._metrics = metrics
        self._experiment_id = experiment_id
        self._unwritten: list[tuple[RunResult, Sequence[Event]]] = []

    def add(self, result: RunResult, events: Sequence[Event]) -> None:
        """Hold a finished run; write the batch once it is full."""
        self._unwritten.append((result, events))
        if len(self._unwritten) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write what is held (a batch is all or nothing, so on failure run by run).

        Raises:
            Exception: the first run that could not be written; the others are kept.
        """
        batch, self._unwritten = self._unwritten, []
        if self._metrics is None or not batch:
            return
        try:
            self._metrics.record_runs(self._experiment_id, batch)
        except Exception:
            failures = []
            for run in batch:
                try:
                    self._metrics.record_runs(self._experiment_id, [run])
                except Exception as exc:
                    failures.append(exc)
            if failures:
                raise failures[0] from None


async def _all_or_cancel(runs: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Await every run; if one fails (or this is cancelled), cancel the others first."""
    tasks = [asyncio.ensure_future(run) for run in runs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


_frozen_by = 0
_freeze_lock = threading.Lock()


@contextlib.contextmanager
def _old_objects_left_alone() -> Iterator[None]:
    """Keep the garbage collector off the objects that exist before the runs start.

    A full collection scans every object, and most of them are the imported libraries'
    (LangGraph, pydantic, openai, DuckDB): 12% of a replayed suite's time went to collecting
    them again and again. ``gc.freeze`` sets them aside until the suite is done. Suites
    running at once share one freeze, undone when the last one ends; a process that froze
    objects itself (a pre-fork server) keeps them frozen.
    """
    global _frozen_by  # noqa: PLW0603 -- one count per process, under its lock
    with _freeze_lock:
        # A process that froze objects itself (a pre-fork server) is left as it is.
        shares = _frozen_by > 0 or gc.get_freeze_count() == 0
        if shares:
            if _frozen_by == 0:
                gc.freeze()
            _frozen_by += 1
    try:
        yield
    finally:
        if shares:
            with _freeze_lock:
                _frozen_by -= 1
                if _frozen_by == 0:
                    gc.unfreeze()


def open_experiment(
    metrics: ExperimentLog | None, spec: ExperimentSpec, label: str, resume: bool
) -> tuple[Experiment, set[tuple[str, int]]]:
    """The experiment to run into, and the runs it already holds.

    With ``resume``, the latest unfinished experiment with ``spec``; else a new one. Without
    a log, an experiment that lives in memory only.
    """
    if metrics is None:
        started_at = SystemClock().now()
        # A live experiment's id names its runs' worlds and seeds their ids: never reuse one.
        unique = started_at.isoformat() + os.urandom(4).hex() if spec.mode == "live" else ""
        digest = hashlib.sha256((spec.model_dump_json() + unique).encode()).hexdigest()[:12]
        experiment = Experiment(
            experiment_id=f"exp_{digest}", spec=spec, started_at=started_at, label=label
        )
        return experiment, set()
    unfinished = metrics.unfinished_experiment(spec) if resume else None
    if unfinished is not None:
        return unfinished, metrics.finished_runs(unfinished.experiment_id)
    return metrics.start_experiment(spec, label), set()


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def policy_for(task: Task, policy: Policy) -> Policy:
    """The suite's policy, with the task's use case lowered to the task's phase if it has one."""
    if task.phase is None:
        return policy
    use_case = policy.use_cases[task.use_case].model_copy(update={"phase": task.phase})
    return policy.model_copy(update={"use_cases": {**policy.use_cases, task.use_case: use_case}})


class SuiteRunner:
    """Runs one task of a suite at a time, as the experiment's spec says.

    :func:`arun_suite` makes one per suite; a cluster's worker makes one per experiment
    and keeps it for the chunks of runs it is given (:mod:`agentlab.lab.cluster`).
    """

    def __init__(
        self,
        suite: Suite,
        spec: ExperimentSpec,
        *,
        cassettes: Path,
        cassette_cache: Path | None,
        model_base_url: str | None,
        model_api_key_env: str,
        tools: ToolRegistry | None = None,
        world_url: str | None = None,
        time_scale: float = 1.0,
        caps: ToolCaps | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        self.suite = suite
        self.spec = spec
        self.experiment_id = ""
        """Set once the experiment is opened."""
        self.cassettes = cassettes
        self.cassette_cache = cassette_cache
        self.cassette_model = spec.baseline_model or spec.model
        self.model_base_url = model_base_url
        self.model_api_key_env = model_api_key_env
        self.tools = tools
        self.world_url = world_url
        self.is_live = spec.mode == "live"
        policy = compressed(suite.loaded_policy, time_scale, model_base_url)
        # Waited in live runs only: a recorded run's latency is modelled, not waited.
        self.wait_share = 1 / time_scale if self.is_live else 0.0
        # Live runs share the caps and the budget, as they would share the real systems;
        # recorded and replayed ones each have their own (their latency is not waited).
        self.caps = caps or (ToolCaps(policy.rate_limits) if self.is_live else None)
        self.budget = budget or (LLMBudget.from_policy(policy) if self.is_live else None)
        self.corpus = _corpus_of(suite)
        self.leaks = LeakDetector(self.corpus)
        self.sim_app = build_sim_app(time_scale=self.wait_share) if model_base_url is None else None
        self.recorded: dict[tuple[str, int], RunResult] = {}
        self._resources = contextlib.ExitStack()
        self._knowledge: Retriever | None = None

    def knowledge(self) -> Retriever | None:
        """The knowledge base ``chat_rag`` retrieves from, built once for all the runs.

        Indexing the corpus took 96 ms; a run only searches it. None for the other
        configurations.
        """
        if self.spec.config != "chat_rag":
            return None
        if self._knowledge is None:
            self._knowledge = open_knowledge(self._resources, self.corpus)
        return self._knowledge

    def close(self) -> None:
        """Let go of what the runs shared (the knowledge base)."""
        self._resources.close()

    async def run(self, task: Task, repetition: int) -> tuple[RunResult, list[Event]]:
        """Run ``task`` once; a failure to run becomes a result with ``error`` set.

        Whatever goes wrong in one run (a cassette edited into nonsense, a model endpoint
        that answers garbage) is that run's error; the suite's other runs go on.
        """
        # In upgrade mode every repetition of the candidate plays against the baseline's
        # first recording: the baseline is the recording, not a distribution.
        recorded_as = 0 if self.spec.mode == "upgrade" else repetition
        path = cassette_path(
            self.cassettes, self.suite.name, self.spec.config, self.cassette_model, task.id,
            repetition=recorded_as,
        )  # fmt: skip
        try:
            cassette = (
                Cassette(path)  # a live run's is never saved: it only passes requests on
                if self.spec.mode in ("record", "live")
                else load_cassette(path, cache=self.cassette_cache)
            )
            return await self._run(task, repetition, cassette)
        except Exception as exc:
            logger.warning("task %s failed to run: %s", task.id, exc, exc_info=True)
            return self._error(task, repetition, exc), []

    async def _run(
        self, task: Task, repetition: int, cassette: Cassette
    ) -> tuple[RunResult, list[Event]]:
        mode = self.spec.mode
        clock = VirtualClock()
        store = MemoryEventStore()

        async def count_latency(response: httpx.Response) -> None:
            clock.advance(latency_ms_of(response))

        hooks = {"response": [count_latency]}
        world_url, world_transport, model_transport = self._transports(task, repetition, cassette)
        is_sim = self.spec.model.startswith(SIM_PREFIX)
        async with (
            httpx.AsyncClient(
                transport=world_transport, base_url=world_url, event_hooks=hooks
            ) as world_http,
            httpx.AsyncClient(transport=model_transport, event_hooks=hooks) as model_http,
            open_live_agent(
                self.spec.config,
                store=store,
                model=self.spec.model,
                model_base_url=self.model_base_url or SIM_BASE_URL,
                model_api_key_env=self.model_api_key_env,
                policy=policy_for(task, self.suite.loaded_policy),
                reviewer=suite_reviewer(self.suite.reviewer),
                seed=self.suite.seed + repetition,
                clock=clock,
                ids=IdFactory.seeded(self._seed_of_ids(task, repetition)),
                world_http=world_http,
                model_http=model_http,
                model_clock=clock.monotonic,
                use_budget=self.is_live or (mode != "replay" and not is_sim),
                budget=self.budget,
                caps=self.caps,
                retriever=self.knowledge(),
                tools=self.tools,
            ) as live,
        ):
            recorded_turns = cassette.meta.turns if mode == "replay" and cassette.meta else None
            conversed = Conversed()  # what the requester said survives an error mid-talk
            try:
                await aconverse(
                    live.agent,
                    task,
                    seed=self.suite.seed + repetition,
                    recorded=recorded_turns,
                    model=live.model,
                    conversed=conversed,
                )
                error = None
            except AgentlabError as exc:
                error = exc
            diff_response = await world_http.get("/_world/diff")
            run_ids = store.run_ids()
            if not run_ids:
                raise error or ConfigError(f"task {task.id}: the agent recorded no run")
            events = store.read(run_ids[0])
            state = project_run(events)
            judged = await self._judge(task, state, model_http, cassette, repetition)
        diff = _diff_of(diff_response, cassette.path)
        divergences = [*conversed.divergences, *cassette.divergences]  # the cause first
        if mode in ("replay", "upgrade"):
            targets = ("model", "tool") if mode == "replay" else ("tool",)
            divergences += unused_divergences(cassette, targets)
        checks, breaches = grade(
            task.expect,
            state,
            diff,
            divergences=divergences,
            strict_replay=mode == "replay",
            leaks=self.leaks,
        )
        if judged is not None:
            checks.append(judged)
        talk = measure_conversation(task, events, conversed, leaks=self.leaks)
        if task.expect.conversation is not None:
            checks.append(check_conversation(task.expect.conversation, talk, state))
        if mode == "upgrade" and any(d.is_write for d in divergences):
            # The recorded world is the baseline's: with other side effects, the final
            # state is not known. The side-effect diff says what differs.
            checks = [c for c in checks if c.name != "world"]
            if task.expect.world is not None:
                checks.append(_world_unknown(divergences))
        measures = measure(state, self.suite.tool_costs_usd)
        security = security_counts(events)
        failed = [c for c in checks if not c.passed]
        result = RunResult(
            **self._identity(task, repetition),
            run_id=state.run.run_id,
            status=state.status,
            answer=state.answer,
            success=not failed and error is None,
            checks=tuple(checks),
            failure_cause=failed[0].name if failed else ("error" if error else None),
            latency_ms=measures.latency_ms,
            model_calls=measures.model_calls,
            prompt_tokens=measures.prompt_tokens,
            completion_tokens=measures.completion_tokens,
            cost_usd=measures.cost_usd,
            tool_cost_usd=measures.tool_cost_usd,
            tool_calls=measures.tool_calls,
            external_calls=measures.external_calls,
            dry_runs=measures.dry_runs,
            blocked_calls=measures.blocked_calls,
            tool_failures=measures.tool_failures,
            forbidden_effects=breaches,
            injections_detected=security.injections_detected,
            dlp_detections=security.dlp_detections,
            exfiltrations_blocked=security.exfiltrations_blocked,
            rework=measures.rework,
            reviews=measures.reviews,
            side_effects=tuple(committed_writes(state)),
            divergences=tuple(divergences),
            world_diff=diff,
            error=str(error) if error else None,
            recorded_success=(cassette.meta.outcome.get("success") if cassette.meta else None),
            **conversation_fields(task, talk),
        )
        if mode == "record":
            cassette.save(self._meta(task, repetition, result, is_sim, conversed.turns))
        elif cassette.meta is not None:
            try:
                self.recorded[(task.id, repetition)] = recorded_result(cassette.meta, result)
            except ValidationError as exc:
                raise CassetteError(
                    f"{cassette.path}: metadata.agentlab.outcome is not a graded run: "
                    f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}",
                    hint="re-record the cassette rather than editing it by hand",
                ) from None
        return result, events

    def _transports(
        self, task: Task, repetition: int, cassette: Cassette
    ) -> tuple[str, httpx.AsyncBaseTransport, httpx.AsyncBaseTransport]:
        """The world's base URL, and the transports to the world and to the model."""
        mode = self.spec.mode
        world_url = "http://world"
        if self.is_live and self.world_url is not None:
            world_url = tenant_url(self.world_url, self.tenant(task, repetition))
        world_transport = {
            "record": lambda: CassetteTransport(cassette, "record", inner=self._live_world()),
            "replay": lambda: CassetteTransport(cassette, "play"),
            "upgrade": lambda: CassetteTransport(cassette, "play", match_on=SAME_EFFECT),
            "live": lambda: CassetteTransport(
                cassette,
                "pass",
                inner=self._live_world()
                if self.world_url is None
                else httpx.AsyncHTTPTransport(retries=0),
            ),
        }[mode]()
        model_transport: httpx.AsyncBaseTransport = (
            CassetteTransport(cassette, "play")
            if mode == "replay"
            else self._live_model_transport(cassette, record=mode == "record")
        )
        return world_url, world_transport, model_transport

    def tenant(self, task: Task, repetition: int) -> str:
        """The name of a live run's world on a tenants server: one per run of the experiment.

        A run retried (its first machine died) gets the same world back, with the writes
        its first attempt made; its idempotency keys keep them from being made twice.
        """
        return f"{self.experiment_id}.{task.id}.r{repetition}"

    def _seed_of_ids(self, task: Task, repetition: int) -> int:
        """The seed of a run's ids: the same for every replay of a task's repetition.

        A live run's also depends on its experiment, so runs of two live experiments never
        share an id (their per-run caps and idempotency keys would collide), while a run
        retried within its experiment keeps its ids, and so its idempotency keys.
        """
        if self.is_live:
            return _stable_seed(self.experiment_id, self.suite.name, task.id, repetition)
        return _stable_seed(self.suite.name, task.id, repetition)

    def _live_world(self) -> httpx.ASGITransport:
        """A fresh sandbox world for one recorded or live run (replays never build one)."""
        # The world keeps time of its own: in replay it is not there to read the run's
        # clock, and every read moves a virtual clock on by a tick.
        world = World(
            self.suite.world_fixture,
            fixture_path=self.suite.world_fixture_path,
            clock=VirtualClock(),
        )
        return httpx.ASGITransport(app=build_world_app(world, sleep=self._world_wait))

    async def _world_wait(self, seconds: float) -> None:
        """A recorded run's world latency is modelled only; a live run's is waited."""
        if self.wait_share:
            await asyncio.sleep(seconds * self.wait_share)

    async def _judge(
        self,
        task: Task,
        state: RunState,
        model_http: httpx.AsyncClient,
        cassette: Cassette,
        repetition: int,
    ) -> CheckResult | None:
        """The suite's model judge on the finished run, or None when the task is not judged.

        The judge's request goes through a client on the run's cassette, so it is recorded
        and replayed like the run's own calls. A simulator judge is the in-process simulator
        even when the run's model is a real endpoint.
        """
        judge = self.suite.judge
        if judge is None or not judge.applies_to(task):
            return None
        sim_judge = judge.model.startswith(SIM_PREFIX)
        async with contextlib.AsyncExitStack() as stack:
            http = model_http
            if sim_judge and self.model_base_url is not None:
                http = await stack.enter_async_context(
                    httpx.AsyncClient(transport=self._sim_transport(cassette))
                )
            model = await stack.enter_async_context(
                OpenAIChatModel(
                    judge.model,
                    base_url=SIM_BASE_URL if sim_judge else self.model_base_url or SIM_BASE_URL,
                    api_key_env=None if sim_judge else self.model_api_key_env,
                    http_client=http,
                    seed=self.suite.seed + repetition,
                )
            )
            try:
                return await judge_run(model, task.text, state, seed=self.suite.seed + repetition)
            except AgentlabError as exc:
                return CheckResult(name="judge", passed=False, detail=f"the judge failed: {exc}")

    def _sim_transport(self, cassette: Cassette) -> CassetteTransport:
        """The in-process simulator on ``cassette``, as the mode says (a simulator judge)."""
        if self.spec.mode == "replay":
            return CassetteTransport(cassette, "play")
        if self.sim_app is None:
            self.sim_app = build_sim_app(time_scale=0)
        inner = httpx.ASGITransport(app=self.sim_app)
        handling = "record" if self.spec.mode == "record" else "pass"
        return CassetteTransport(cassette, handling, inner=inner)

    def _live_model_transport(self, cassette: Cassette, *, record: bool) -> CassetteTransport:
        inner: httpx.AsyncBaseTransport = (
            httpx.ASGITransport(app=self.sim_app)
            if self.model_base_url is None and self.sim_app is not None
            else httpx.AsyncHTTPTransport(retries=0)
        )
        secrets = [_env(self.model_api_key_env)] if self.model_base_url else []
        return CassetteTransport(
            cassette, "record" if record else "pass", inner=inner, secrets=secrets
        )

    def _meta(
        self,
        task: Task,
        repetition: int,
        result: RunResult,
        is_sim: bool,
        turns: Sequence[RequesterTurn] = (),
    ) -> CassetteMeta:
        return CassetteMeta(
            turns=list(turns),
            suite=self.suite.name,
            task_id=task.id,
            config=self.spec.config,
            model=self.spec.model,
            is_simulated=is_sim,
            note=SIMULATOR_NOTE if is_sim else "",
            repetition=repetition,
            seed=self.suite.seed + repetition,
            code_version=self.spec.code_version,
            recorded_at=datetime.now(UTC).replace(microsecond=0),
            outcome=json.loads(result.model_dump_json(include=set(RECORDED_FIELDS))),
        )

    def _identity(self, task: Task, repetition: int) -> dict[str, Any]:
        """The fields that say which run of which experiment a result is."""
        return {
            "experiment_id": self.experiment_id,
            "suite": self.suite.name,
            "config": self.spec.config,
            "model": self.spec.model,
            "mode": self.spec.mode,
            "task_id": task.id,
            "kind": task.kind,
            "repetition": repetition,
        }

    def _error(self, task: Task, repetition: int, exc: Exception) -> RunResult:
        message = str(exc)
        return RunResult(
            **self._identity(task, repetition),
            status="error",
            success=False,
            checks=(CheckResult(name="error", passed=False, detail=message),),
            failure_cause="cassette" if isinstance(exc, CassetteError) else "error",
            error=message,
            # A run that could not be carried out is a failed run of its task, in pass^k too.
            is_multi_turn=task.requester is not None,
        )


RECORDED_FIELDS = (
    "status", "success", "failure_cause", "checks", "latency_ms", "model_calls",
    "prompt_tokens", "completion_tokens", "cost_usd", "tool_cost_usd", "tool_calls",
    "external_calls",
    "dry_runs", "blocked_calls", "tool_failures", "forbidden_effects", "rework", "reviews",
    "side_effects",
)  # fmt: skip
"""What a cassette keeps of how its run was graded when it was recorded."""


def recorded_result(meta: CassetteMeta, replayed: RunResult) -> RunResult:
    """The run as it was graded when ``meta``'s cassette was recorded.

    This is the baseline a replay is held to when there is no earlier nightly to compare with.
    """
    recorded = {k: v for k, v in meta.outcome.items() if k in RECORDED_FIELDS}
    return RunResult.model_validate(
        {
            **replayed.model_dump(),
            **recorded,
            "mode": "record",
            "divergences": [],
            "error": None,
            "recorded_success": None,
        }
    )


def _diff_of(response: httpx.Response, path: Path) -> dict[str, Any]:
    """The world's diff from ``/_world/diff`` (live or recorded), or a clear error."""
    if response.status_code != 200:
        return {}
    try:
        diff = response.json()
    except ValueError:
        diff = None
    if not isinstance(diff, dict):
        raise CassetteError(
            f"{path}: the recorded answer to GET /_world/diff is not a JSON object",
            hint="re-record the cassette rather than editing it by hand",
        )
    return diff


def _world_unknown(divergences: Sequence[Divergence]) -> CheckResult:
    writes = [d for d in divergences if d.is_write]
    return CheckResult(
        name="world",
        passed=False,
        detail=f"{len(writes)} side effect(s) differ from the baseline's recording, so the "
        "final world state is not known; see the side-effect diff",
    )


def _corpus_of(suite: Suite) -> list[Document]:
    return load_corpus(kb_folder_of(suite.world_fixture, suite.world_fixture_path))


def _env(name: str) -> str:
    return os.environ.get(name, "")
