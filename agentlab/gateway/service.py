"""What the gateway does behind its endpoints: start runs, answer approvals, judge SLOs.

The :class:`Gateway` holds the parts every run shares for as long as the service is up -- the
tools' systems (the sandbox world in-process, or ``world_url``), the model clients (the
simulator in-process, or ``model_base_url``), one governed executor (so caps, rate limits and
the audit log are shared), the LLM budget and the checkpointer -- and drives each run as an
asyncio task in the server's event loop. A run that needs a person pauses (its graph is
checkpointed); an approval through the API records the decision and resumes the run in the
background, where the executor commits the step exactly once.

Before a run starts, the SLOs that apply to its use case are judged over the runs this
gateway finished in their windows. When one's error budget is spent, the run does not go to
the agent: it is recorded, the spent SLOs are kept as a ``slo_budget_spent`` artifact, the use
case's fallbacks run in order (``runtime.run_fallbacks``: an RPA flow, a chat answer, a
ticket) and the run finishes ``cancelled`` saying why. Runs sent to the fallbacks are left out
of the KPIs, so the budget recovers as the bad runs leave the window.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
from langgraph.checkpoint.base import BaseCheckpointSaver

from agentlab.adapters import OpenAIChatModel, open_checkpointer, open_vector_index
from agentlab.agents import Agent, StopConditions
from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import InvalidEvent
from agentlab.core.events import Event, RunFinished, RunStarted, StepApproved, StepProposed
from agentlab.core.ids import IdFactory, RunId, StepId
from agentlab.core.records import Run
from agentlab.gateway.auth import (
    APPROVALS_DECIDE,
    RUNS_READ,
    RUNS_READ_ALL,
    RUNS_SUBMIT_AS,
    Caller,
)
from agentlab.gateway.samples import run_sample
from agentlab.gateway.schemas import RunRequest, RunStatus
from agentlab.lab.live import SIM_BASE_URL, SIM_PREFIX
from agentlab.llm import LLMBudget
from agentlab.llm.sim import build_sim_app, load_profiles
from agentlab.ops import AgentMetrics, RunSample, SLOSet, SLOStatus, evaluate_slos, kpis_of
from agentlab.ops.slo import SLO
from agentlab.policy import Policy
from agentlab.rag import HashingEmbedder, Retriever, load_corpus
from agentlab.runtime import ApprovalQueue, CallRequest, Executor, run_fallbacks
from agentlab.runtime.executor import policy_dlp
from agentlab.security import Dlp
from agentlab.store import EventStore, RunRecorder, RunState, StepState, project_run
from agentlab.store.audit import AuditEntry, AuditLog
from agentlab.store.conversation import ConversationLog
from agentlab.tools import builtin_tools
from agentlab.world import World, build_world_app

logger = logging.getLogger(__name__)

BURN_WINDOW_SHARE = 12
"""The burn rate is measured over the latest twelfth of an SLO's window (14 h of a week)."""


class GatewayError(Exception):
    """A request the gateway refuses: an HTTP status, a code, a message and what to do next."""

    def __init__(self, status: int, code: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint


def forbidden(message: str, *, hint: str | None = None) -> GatewayError:
    """A 403: the caller's token or actor may not do this; nothing was done."""
    return GatewayError(403, "FORBIDDEN", message, hint=hint)


def invalid(field: str, message: str, *, hint: str | None = None) -> GatewayError:
    """A 422 naming the field that is wrong."""
    return GatewayError(422, "INVALID_REQUEST", f"body.{field}: {message}", hint=hint)


@dataclass(frozen=True)
class Submission:
    """A run accepted but not yet started."""

    run_id: RunId
    task: str
    actor: str
    use_case: str
    config: str
    model: str
    degraded_by: tuple[SLOStatus, ...] = ()


class _PresetRunId(IdFactory):
    """An id factory whose first run id is chosen beforehand, so the API can return it."""

    def __init__(self, run_id: RunId) -> None:
        super().__init__()
        self._preset: RunId | None = run_id

    def run_id(self) -> RunId:
        preset, self._preset = self._preset, None
        return preset if preset is not None else super().run_id()


class Gateway:
    """The runs, approvals and SLOs behind the HTTP API; see the module's doc.

    Args:
        store: Where runs are recorded.
        audit: The audit log the executor writes and ``/audit`` reads.
        policy: Actors, use cases, tools, approvals, fallbacks.
        slos: The SLOs judged before each run.
        metrics: Where finished runs are counted for ``/metrics``.
        checkpoint_url: Where paused runs' graphs are kept; ``memory`` lasts as long as the
            process, a DuckDB or PostgreSQL URL survives a restart.
        checkpoint_key: Encrypts checkpointed values (an open run's conversation).
        world_url: The tools' systems; None runs the sandbox world in-process.
        model_base_url: An OpenAI-compatible endpoint; None runs the simulator in-process.
        model_api_key_env: The variable holding the endpoint's key.
        default_model: The model of runs that name none.
        conversation: Where prompts and answers go, encrypted.
        clock: Times events.
        limits: Stop conditions of every run.
        sim_time_scale: How much of the simulator's modelled latency it sleeps.
        max_concurrent_runs: Runs working at once; more wait, ``queued``.
    """

    def __init__(
        self,
        *,
        store: EventStore,
        audit: AuditLog,
        policy: Policy,
        slos: SLOSet,
        metrics: AgentMetrics,
        checkpoint_url: str = "memory",
        checkpoint_key: bytes | None = None,
        world_url: str | None = None,
        model_base_url: str | None = None,
        model_api_key_env: str = "OPENAI_API_KEY",
        default_model: str = "sim-large",
        conversation: ConversationLog | None = None,
        clock: Clock | None = None,
        limits: StopConditions | None = None,
        sim_time_scale: float = 0.0,
        max_concurrent_runs: int = 8,
    ) -> None:
        self.store = store
        self.audit = audit
        self.policy = policy
        self.slos = slos
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.limits = limits or StopConditions()
        self.default_model = default_model
        self.world: World | None = None
        """The in-process sandbox world (None with ``world_url``): tests read its ``diff()``."""
        self._checkpoint_url = checkpoint_url
        self._checkpoint_key = checkpoint_key
        self._world_url = world_url
        self._model_base_url = model_base_url
        self._model_api_key_env = model_api_key_env
        self._conversation = conversation
        self._sim_time_scale = sim_time_scale
        self._tools = builtin_tools()
        self._sim_profiles = frozenset(load_profiles()) if model_base_url is None else None
        self._slots = asyncio.Semaphore(max_concurrent_runs)
        self._stack = AsyncExitStack()
        self._start_lock = asyncio.Lock()
        self._is_started = False
        self._executor: Executor | None = None
        self._checkpointer: BaseCheckpointSaver[Any] | None = None
        self._world_http: httpx.AsyncClient | None = None
        self._sim_http: httpx.AsyncClient | None = None
        self._budget: LLMBudget | None = None
        self._models: dict[str, OpenAIChatModel] = {}
        self._retriever: Retriever | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._queued: dict[str, Submission] = {}
        self._not_started: dict[str, tuple[Submission, str]] = {}
        self._use_cases: dict[str, str] = {}
        self._degraded_by: dict[str, str] = {}
        self._counted: set[str] = set()
        """Finished runs already counted in the metrics and the SLO window."""
        self._closed: set[str] = set()
        """Runs known to have finished, which the approvals scan skips."""
        self._samples: deque[RunSample] = deque()
        metrics.track_pending(self._count_pending)
        self.publish_slos()

    # -- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the shared parts; done once, at the first request or at the app's start-up."""
        async with self._start_lock:
            if self._is_started:
                return
            stack = self._stack
            if self._world_url is None:
                self.world = World(clock=self.clock)
                self._world_http = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=build_world_app(self.world)),
                    base_url="http://world",
                )
            else:
                self._world_http = httpx.AsyncClient(base_url=self._world_url)
            await stack.enter_async_context(self._world_http)
            if self._model_base_url is None:
                self._sim_http = httpx.AsyncClient(
                    transport=httpx.ASGITransport(
                        app=build_sim_app(time_scale=self._sim_time_scale)
                    )
                )
                await stack.enter_async_context(self._sim_http)
            self._budget = LLMBudget.from_policy(self.policy)
            self._executor = Executor(
                tools=self._tools,
                policy=self.policy,
                http=self._world_http,
                audit=self.audit,
                clock=self.clock,
                conversation=self._conversation,
            )
            self._checkpointer = await stack.enter_async_context(
                open_checkpointer(self._checkpoint_url, key=self._checkpoint_key)
            )
            self._is_started = True

    async def aclose(self) -> None:
        """Stop the runs' tasks (a stopped run stays open, to be resumed) and close the parts."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stack.aclose()
        self._is_started = False

    @property
    def executor(self) -> Executor:
        """The governed executor every run shares."""
        assert self._executor is not None, "call start() first"
        return self._executor

    # -- runs --------------------------------------------------------------------------------

    def validate(self, request: RunRequest, caller: Caller) -> Submission:
        """Check a run request against the caller and the policy; nothing is recorded.

        Raises:
            GatewayError: 403 for what the caller or actor may not do, 422 for a wrong field.
        """
        actor = request.actor or caller.actor
        if actor != caller.actor and not caller.may(RUNS_SUBMIT_AS):
            raise forbidden(
                f"token {caller.token_name!r} may start runs as {caller.actor!r} only, "
                f"not as {actor!r}",
                hint=f"leave actor out, or use a token with the {RUNS_SUBMIT_AS} scope",
            )
        who = self.policy.actors.get(actor)
        if who is None:
            known = ", ".join(sorted(self.policy.actors))
            if request.actor is None:
                raise forbidden(
                    f"the token's actor {actor!r} is not an actor of the policy, so it cannot "
                    "start runs",
                    hint=f"name an actor (needs {RUNS_SUBMIT_AS}); known: {known}",
                )
            raise invalid("actor", f"the policy has no actor {actor!r}", hint=f"known: {known}")
        if request.use_case not in self.policy.use_cases:
            raise invalid(
                "use_case",
                f"the policy has no use case {request.use_case!r}",
                hint=f"known: {', '.join(sorted(self.policy.use_cases))}",
            )
        if request.use_case not in who.use_cases:
            raise forbidden(
                f"actor {actor!r} may not work in use case {request.use_case!r}",
                hint=f"{actor}'s use cases: {', '.join(who.use_cases) or 'none'}",
            )
        model = request.model or self.default_model
        if self._sim_profiles is not None and model not in self._sim_profiles:
            raise invalid(
                "model",
                f"{model!r} is not one of the simulator's profiles, and the gateway has no "
                "model endpoint",
                hint=f"use one of {', '.join(sorted(self._sim_profiles))}, or start the "
                "gateway with --model-url",
            )
        return Submission(
            run_id=IdFactory().run_id(),
            task=request.task,
            actor=actor,
            use_case=request.use_case,
            config=request.config,
            model=model,
        )

    async def submit(self, submission: Submission) -> Submission:
        """Start a validated run in the background; the SLOs decide agent or fallbacks."""
        await self.start()
        spent = tuple(s for s in self.slo_statuses(submission.use_case) if s.is_exhausted)
        if spent and self.policy.use_cases[submission.use_case].fallbacks:
            submission = replace(submission, degraded_by=spent)
        elif spent:
            logger.warning(
                "SLO budget spent for use case %s, which declares no fallbacks: running the agent",
                submission.use_case,
            )
        self._queued[submission.run_id] = submission
        self._use_cases[submission.run_id] = submission.use_case
        self._spawn(self._drive(submission))
        await asyncio.sleep(0)  # let the run begin: its run_started is written at once
        return submission

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lock_for(self, run_id: str) -> asyncio.Lock:
        return self._locks.setdefault(run_id, asyncio.Lock())

    async def _drive(self, submission: Submission) -> None:
        run_id = submission.run_id
        async with self._lock_for(run_id), self._slots:
            self.metrics.runs_in_progress.inc()
            try:
                if submission.degraded_by:
                    await self._hand_to_fallbacks(submission)
                else:
                    agent = self._agent(submission.config, submission.model, run_id=run_id)
                    await agent.arun(
                        submission.task, actor=submission.actor, use_case=submission.use_case
                    )
            except Exception as exc:
                # The agent records its own failures; what reaches here is a set-up problem.
                logger.exception("run %s could not be driven", run_id)
                if not self.store.read(run_id):
                    why = f"{type(exc).__name__}: {exc}"[:500]
                    self._not_started[run_id] = (submission, why)
            finally:
                self.metrics.runs_in_progress.dec()
                self._queued.pop(run_id, None)
                self.count_if_finished(run_id)

    async def _resume(self, run_id: RunId, *, reason: str) -> None:
        async with self._lock_for(run_id), self._slots:
            self.metrics.runs_in_progress.inc()
            try:
                run = self._run_record(run_id)
                agent = self._agent(run.config or "single", run.model or self.default_model)
                if run_id not in self._use_cases:  # started before this process
                    values = await self._checkpoint(agent, run_id)
                    self._use_cases[run_id] = str(values.get("use_case", "unknown"))
                await agent.aresume(run_id, reason=reason)
            except Exception:
                logger.exception("run %s could not be resumed", run_id)
            finally:
                self.metrics.runs_in_progress.dec()
                self.count_if_finished(run_id)

    def count_if_finished(self, run_id: str) -> None:
        """Count a run in the metrics and the SLO window once it has finished; once only."""
        if run_id in self._counted:
            return
        events = self.store.read(run_id)  # type: ignore[arg-type]
        if not events:
            return
        sample = run_sample(
            events,
            use_case=self._use_cases.get(run_id, "unknown"),
            degraded_by=self._degraded_by.get(run_id),
        )
        if sample is None:
            return
        self._counted.add(run_id)
        self._closed.add(run_id)
        self.metrics.observe_run(sample)
        self._samples.append(sample)
        horizon = self.clock.now() - self.slos.longest_window
        while self._samples and self._samples[0].finished_at < horizon:
            self._samples.popleft()
        self.publish_slos()

    def _agent(self, config: str, model: str, *, run_id: RunId | None = None) -> Agent:
        assert self._checkpointer is not None, "call start() first"
        return Agent(
            config,
            model=self._model(model),
            executor=self.executor,
            store=self.store,
            checkpointer=self._checkpointer,
            retriever=self._knowledge() if config == "chat_rag" else None,
            limits=self.limits,
            conversation=self._conversation,
            clock=self.clock,
            ids=_PresetRunId(run_id) if run_id is not None else None,
        )

    def _model(self, name: str) -> OpenAIChatModel:
        model = self._models.get(name)
        if model is None:
            if self._model_base_url is None:
                model = OpenAIChatModel(
                    name,
                    base_url=SIM_BASE_URL,
                    api_key_env=None,
                    http_client=self._sim_http,
                    budget=self._budget,
                )
            else:
                model = OpenAIChatModel(
                    name,
                    base_url=self._model_base_url,
                    api_key_env=None if name.startswith(SIM_PREFIX) else self._model_api_key_env,
                    budget=self._budget,
                )
            self._stack.push_async_callback(model.aclose)
            self._models[name] = model
        return model

    def _knowledge(self) -> Retriever:
        if self._retriever is None:
            embedder = HashingEmbedder()
            index = open_vector_index("memory://", embedder.dimension, embedder_name=embedder.name)
            self._stack.callback(index.close)
            self._retriever = Retriever(embedder, index)
            self._retriever.index_documents(load_corpus())
        return self._retriever

    async def _checkpoint(self, agent: Agent, run_id: str) -> dict[str, Any]:
        snapshot = await agent.graph.aget_state({"configurable": {"thread_id": run_id}})
        return dict(snapshot.values or {})

    def _run_record(self, run_id: str) -> Run:
        events = self.store.read(run_id)  # type: ignore[arg-type]
        return events[0].run  # type: ignore[union-attr]

    # -- fallbacks when a budget is spent ----------------------------------------------------

    async def _hand_to_fallbacks(self, submission: Submission) -> None:
        spent = submission.degraded_by
        names = ", ".join(s.slo.name for s in spent)
        self._degraded_by[submission.run_id] = spent[0].slo.name
        who = self.policy.actors[submission.actor]
        recorder = RunRecorder.start(
            self.store,
            task=submission.task,
            actor=submission.actor,
            scopes=who.scopes,
            config=submission.config,
            model=submission.model,
            clock=self.clock,
            ids=_PresetRunId(submission.run_id),
        )
        recorder.artifact(
            "slo_budget_spent",
            {
                "use_case": submission.use_case,
                "slos": [
                    {
                        "name": s.slo.name,
                        "kpi": s.slo.kpi,
                        "target": s.slo.target,
                        "value": s.value,
                        "budget_spent": s.budget_spent,
                        "burn_rate": s.burn_rate,
                        "summary": s.summary(),
                    }
                    for s in spent
                ],
                "fallbacks": [f.kind for f in self.policy.use_cases[submission.use_case].fallbacks],
            },
        )
        report = await run_fallbacks(
            self.executor,
            recorder,
            CallRequest(actor=submission.actor, use_case=submission.use_case),
            failure=f"the agent is paused for {submission.use_case}: the error budget of "
            f"SLO {names} is spent",
        )
        taken = (
            f"taken over by the {report.taken_over_by} fallback"
            if report.taken_over_by
            else "no fallback took the work over"
        )
        recorder.finish(
            "cancelled",
            answer=report.answer,
            reason=f"the error budget of SLO {names} is spent; the agent did not run and the "
            f"use case's fallbacks took the request ({taken})",
        )

    # -- reading runs ------------------------------------------------------------------------

    def may_see(self, caller: Caller, actor: str) -> bool:
        """True when ``caller`` may read runs of ``actor``."""
        return caller.may(RUNS_READ_ALL) or (caller.may(RUNS_READ) and caller.actor == actor)

    def queued(self, run_id: str) -> tuple[Submission, str] | None:
        """A run accepted but not in the store: waiting for a slot, or it could not start.

        Returns the submission and ``queued``, or ``failed: <why>`` for one that never started.
        """
        if (submission := self._queued.get(run_id)) is not None:
            return submission, "queued"
        if (failed := self._not_started.get(run_id)) is not None:
            return failed[0], f"failed: {failed[1]}"
        return None

    def use_case_of(self, run_id: str) -> str | None:
        """The use case of a run this gateway started."""
        return self._use_cases.get(run_id)

    def degraded_by(self, run_id: str) -> str | None:
        """The SLO that sent the run to the fallbacks."""
        return self._degraded_by.get(run_id)

    # -- approvals ---------------------------------------------------------------------------

    def pending(self) -> Iterator[tuple[RunState, StepState]]:
        """Every step waiting for a person, over the runs not known to be finished.

        A finished run is remembered and never read again; so each call reads only the open
        runs (and the ones new since the last call), not the whole store.
        """
        for run_id in self.store.run_ids():
            if run_id in self._closed:
                continue
            state = project_run(self.store.read(run_id))
            if state.is_finished:
                self._closed.add(run_id)
                continue
            for step in state.steps.values():
                if step.status == "dry_run" and not step.is_preview_only:
                    yield state, step

    def _count_pending(self) -> float:
        try:
            return float(sum(1 for _ in self.pending()))
        except Exception:  # a scrape must not fail because the store is busy
            logger.exception("counting pending approvals failed")
            return float("nan")

    def tool_scope(self, tool: str) -> str:
        """The scope a tool needs (and deciding on its commits)."""
        spec = self._tools.get(tool)
        return spec.scope if spec is not None else f"{tool}:unknown"

    @property
    def dlp(self) -> Dlp:
        """DLP with the policy's rules, for what the gateway writes and shows."""
        return policy_dlp(self.policy)

    def masked(self, events: Sequence[Event]) -> list[Event]:
        """``events`` with tool arguments masked by the DLP rules for logs.

        The store keeps what the model proposed (a resumed run needs it); what the API shows
        people and dashboards is masked like a log.
        """
        dlp = self.dlp
        shown: list[Event] = []
        for event in events:
            if isinstance(event, RunStarted):
                task = dlp.mask_text(event.run.task, "logs")
                run = event.run.model_copy(update={"task": task})
                shown.append(event.model_copy(update={"run": run}))
            elif isinstance(event, StepProposed):
                arguments = dlp.apply(event.step.arguments, "logs").value
                step = event.step.model_copy(update={"arguments": arguments})
                shown.append(event.model_copy(update={"step": step}))
            elif isinstance(event, StepApproved) and event.edited_arguments is not None:
                edited = dlp.apply(event.edited_arguments, "logs").value
                shown.append(event.model_copy(update={"edited_arguments": edited}))
            else:
                shown.append(event)
        return shown

    def may_decide(self, caller: Caller, tool: str, *, requester: str | None = None) -> bool:
        """True when ``caller`` may approve or reject commits of ``tool``.

        Nobody decides on their own run (``requester``): two-phase commit needs a second
        person.
        """
        if not caller.may(APPROVALS_DECIDE) or caller.actor == requester:
            return False
        actor = self.policy.actors.get(caller.actor)
        granted = caller.scopes | frozenset(actor.scopes if actor else ())
        return self.tool_scope(tool) in granted

    def find_pending(self, step_id: str) -> tuple[RunState, StepState] | None:
        """The waiting step with this id, and its run."""
        return next(((r, s) for r, s in self.pending() if s.step.step_id == step_id), None)

    async def decide(
        self,
        step_id: str,
        caller: Caller,
        *,
        is_approved: bool,
        reason: str,
        edited_arguments: dict[str, Any] | None = None,
    ) -> tuple[RunId, RunStatus]:
        """Record a person's decision on a waiting step and resume its run in the background.

        Raises:
            GatewayError: 404 no such waiting step, 403 the caller may not decide it, 409 the
                run cannot go on from here.
        """
        await self.start()
        found = self.find_pending(step_id)
        if found is None:
            raise GatewayError(
                404,
                "NOT_WAITING",
                f"no approval {step_id} is waiting",
                hint="list what waits with GET /approvals; a step already decided is not listed",
            )
        state, entry = found
        tool = entry.step.tool
        if caller.actor == state.run.actor:
            raise forbidden(
                f"{caller.actor!r} asked for run {state.run.run_id}, so may not decide its "
                "commits: two-phase commit needs a second person",
                hint="ask a reviewer who holds the scope; nothing was recorded",
            )
        if not self.may_decide(caller, tool, requester=state.run.actor):
            raise forbidden(
                f"{caller.actor!r} may not decide commits of {tool} (needs "
                f"{APPROVALS_DECIDE} and {self.tool_scope(tool)})",
                hint="ask someone who holds both scopes; nothing was recorded",
            )
        run_id = state.run.run_id
        lock = self._lock_for(run_id)
        if not lock.locked():  # not working now: it must have a checkpoint to go on from
            run = state.run
            agent = self._agent(run.config or "single", run.model or self.default_model)
            if not await self._checkpoint(agent, run_id):
                raise GatewayError(
                    409,
                    "NO_CHECKPOINT",
                    f"run {run_id} has no checkpoint here, so it could not go on after the "
                    "decision; nothing was recorded",
                    hint="the gateway was restarted with checkpoints in memory; start the task "
                    "again, and serve with --checkpoints duckdb:///... to keep paused runs",
                )
        queue = ApprovalQueue(self.store, clock=self.clock)
        try:
            if is_approved:
                queue.approve(
                    run_id,
                    StepId(step_id),
                    reviewer=caller.actor,
                    reason=reason,
                    edited_arguments=edited_arguments,
                )
            else:
                queue.reject(run_id, StepId(step_id), reviewer=caller.actor, reason=reason)
        except InvalidEvent as exc:
            raise GatewayError(409, "NOT_WAITING", exc.message, hint=exc.hint) from None
        verb = "approved" if is_approved else "rejected"
        # The decision is a decision point of its own: who, when, through which door; the
        # commit that follows names the approver again.
        spec = self._tools.get(tool)
        arguments = edited_arguments if edited_arguments is not None else entry.step.arguments
        self.audit.append(
            AuditEntry(
                at=self.clock.now(),
                run_id=run_id,
                step_id=step_id,
                actor=state.run.actor,
                decision=verb,
                tool=tool,
                arguments=self.dlp.apply(spec.audit_view(arguments), "logs").value
                if spec is not None
                else None,
                approval=f"human:{caller.actor}",
                idempotency_key=entry.step.idempotency_key,
                reason=self.dlp.mask_text(
                    f"{reason} (through the gateway, token {caller.token_name})".lstrip(), "logs"
                ),
            )
        )
        self._spawn(self._resume(run_id, reason=f"{verb} by {caller.actor} through the gateway"))
        return run_id, "running"

    # -- SLOs --------------------------------------------------------------------------------

    def _evaluate(self, slo: SLO) -> SLOStatus:
        now = self.clock.now()
        start, recent = now - slo.window, now - slo.window / BURN_WINDOW_SHARE
        window = [
            s
            for s in self._samples
            if s.finished_at >= start and (slo.use_case is None or s.use_case == slo.use_case)
        ]
        older = [s for s in window if s.finished_at < recent]
        latest = [s for s in window if s.finished_at >= recent]
        history = [kpis_of(older)] if older else None
        [status] = evaluate_slos(kpis_of(latest), [slo], history=history)
        return status

    def slo_statuses(self, use_case: str | None = None) -> list[SLOStatus]:
        """Each SLO (those that apply to ``use_case``, or all) over its window."""
        slos = self.slos if use_case is None else self.slos.for_use_case(use_case)
        return [self._evaluate(slo) for slo in slos.slos]

    def publish_slos(self) -> None:
        """Refresh the SLO gauges of ``/metrics``."""
        self.metrics.set_slo_statuses(self.slo_statuses())


def finish_reason(events: list[Event]) -> str:
    """The reason ``run_finished`` gave, or empty."""
    last = events[-1] if events else None
    return last.reason if isinstance(last, RunFinished) else ""


def when(events: list[Event]) -> tuple[datetime | None, datetime | None]:
    """When the run started and finished (None while open)."""
    if not events:
        return None, None
    last = events[-1]
    return events[0].at, last.at if isinstance(last, RunFinished) else None
