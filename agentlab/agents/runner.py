"""Run a task with one of the three configurations, and resume it after a pause.

``Agent`` binds a configuration to its services (model, executor, store, checkpointer) and
runs tasks: each task is a run in the store and a thread in the checkpointer, under the
same id. A run that waits for a person pauses (LangGraph's interrupt) with its graph state
checkpointed; after the decision is in the store, :meth:`Agent.aresume` -- in this process or
another one, days later -- carries it on. A run whose process died is resumed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Literal, NamedTuple

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import NodeCancelledError
from langgraph.graph import StateGraph
from langgraph.types import Command, ensure_valid_checkpointer

from agentlab.agents import chat_rag, conversation, multi, single
from agentlab.agents._nodes import trace_nodes
from agentlab.agents.context import AgentContext, Progress, StopConditions
from agentlab.agents.state import AgentState
from agentlab.core.clock import Clock
from agentlab.core.errors import BackendError, ConfigError
from agentlab.core.ids import IdFactory, RunId
from agentlab.llm import ChatModel
from agentlab.ops import tracing
from agentlab.policy import offered_tools
from agentlab.rag import AccessScope, Retriever
from agentlab.runtime import CallRequest, Executor
from agentlab.store import EventStore, RunRecorder, RunState, project_run
from agentlab.store.conversation import ConversationLog
from agentlab.tools.browser import Browser

Config = Literal["chat_rag", "single", "multi"]
"""The three configurations of the article's benchmark table."""

_GRAPHS: dict[
    str, tuple[Callable[[], StateGraph[Any, Any, Any, Any]], Callable[[str], list[Any]]]
] = {
    "chat_rag": (chat_rag.build_chat_rag_graph, chat_rag.start_messages),
    "single": (single.build_single_graph, single.start_messages),
    "multi": (multi.build_multi_graph, multi.start_messages),
}
CONFIGS: tuple[str, ...] = tuple(_GRAPHS)


class AgentRun(NamedTuple):
    """Where a run stands after :meth:`Agent.arun` or :meth:`Agent.aresume` returns."""

    run_id: RunId
    status: Literal["finished", "awaiting_approval", "awaiting_reply"]
    state: RunState
    """The run as its events tell it: steps, verdicts, model calls, outcome, answer."""
    waiting: dict[str, Any] | None = None
    """What the run waits for (run_id, step_id, tool, preview), while it waits."""

    @property
    def is_waiting(self) -> bool:
        """True when a person must decide before the run can go on."""
        return self.status == "awaiting_approval"


def _undecided(state: RunState, waiting: dict[str, Any]) -> bool:
    """True when the step a paused run waits for has no approval or rejection yet."""
    entry = state.steps.get(waiting.get("step_id"))  # type: ignore[arg-type]
    return entry is not None and entry.decision is None and not entry.is_settled


def build_graph(config: str) -> StateGraph[Any, Any, Any, Any]:
    """The uncompiled graph of a configuration.

    Raises:
        ConfigError: ``config`` is not one of ``chat_rag``, ``single``, ``multi``.
    """
    try:
        graph = _GRAPHS[config][0]()
    except KeyError:
        raise ConfigError(
            f"unknown agent configuration {config!r}", hint=f"choose one of {', '.join(CONFIGS)}"
        ) from None
    trace_nodes(graph)  # a span per node; nothing when tracing is off
    return graph


def compile_graph(config: str, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """The compiled graph of a configuration, bound to ``checkpointer``.

    Compiling is done once per configuration (and tracing setting) and each agent gets a
    copy with its own checkpointer: a replayed suite builds an agent per run, and compiling
    each time cost it 15 ms a run.

    Where LangGraph's ``compile`` does more with a checkpointer than keep it (with
    ``LANGGRAPH_STRICT_MSGPACK`` on, it wraps the saver in a serialiser allowlist), each agent
    compiles its own graph, so that hardening is never lost.

    Raises:
        TypeError: ``checkpointer`` is not a LangGraph checkpoint saver.
    """
    ensure_valid_checkpointer(checkpointer)
    if _compile_wraps_checkpointer():
        return build_graph(config).compile(checkpointer=checkpointer)
    return _compiled(config, tracing.is_tracing()).copy(update={"checkpointer": checkpointer})


@cache
def _compiled(config: str, is_traced: bool) -> Any:
    del is_traced  # part of the cache key: build_graph wraps nodes only when tracing is on
    return build_graph(config).compile()


@cache
def _compile_wraps_checkpointer() -> bool:
    """True when ``compile`` binds a graph to something other than the saver it was given."""
    probe = InMemorySaver()
    return build_graph("chat_rag").compile(checkpointer=probe).checkpointer is not probe


class Agent:
    """A configuration with its services, ready to run tasks.

    Args:
        config: ``chat_rag``, ``single`` or ``multi``.
        model: The model that plans and acts (and verifies, unless ``verifier_model``).
        executor: Runs tool calls under its policy; its ``policy`` also decides which tools
            the model is offered and what the actor may retrieve.
        store: Where the runs' events go.
        checkpointer: Where graph state is checkpointed (``open_checkpointer`` in adapters);
            use one on a store that outlives the process for approvals that survive it.
        retriever: Knowledge for ``chat_rag``.
        limits: Stop conditions.
        verifier_model: A second model for the ``multi`` verifier.
        conversation: Where prompts and answers are kept, encrypted.
        seed: Sent with every model request.
        progress: Receives a line per model call, tool outcome and wait.
        prune_finished: Delete a run's checkpoints once it has finished; its events stay.
        clock: Times the run's events.
        ids: Hands out run, step and artifact ids.
    """

    def __init__(
        self,
        config: str,
        *,
        model: ChatModel,
        executor: Executor,
        store: EventStore,
        checkpointer: BaseCheckpointSaver[Any],
        retriever: Retriever | None = None,
        limits: StopConditions | None = None,
        verifier_model: ChatModel | None = None,
        conversation: ConversationLog | None = None,
        seed: int | None = None,
        progress: Progress | None = None,
        prune_finished: bool = True,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
    ) -> None:
        self.config = config
        self.graph = compile_graph(config, checkpointer)
        self.model = model
        self.executor = executor
        self.store = store
        self.checkpointer = checkpointer
        self.retriever = retriever
        self.limits = limits or StopConditions()
        self.verifier_model = verifier_model
        self.conversation = conversation
        self.seed = seed
        self.progress = progress
        self.prune_finished = prune_finished
        self.clock = clock or executor.clock
        self.ids = ids

    async def arun(
        self, task: str, *, actor: str, use_case: str, converse: bool = False
    ) -> AgentRun:
        """Start a run of ``task`` for ``actor`` in ``use_case`` and work until it ends or waits.

        With ``converse`` the run is a conversation: an answer waits for the requester
        (``awaiting_reply``); carry it on with :meth:`areply`, end it with :meth:`aend`.

        Raises:
            ConfigError: the policy knows no such actor or use case; nothing is recorded.
        """
        policy = self.executor.policy
        who = policy.actors.get(actor)
        if who is None:
            raise ConfigError(
                f"the policy has no actor {actor!r}", hint=f"known: {', '.join(policy.actors)}"
            )
        if use_case not in policy.use_cases:
            raise ConfigError(
                f"the policy has no use case {use_case!r}",
                hint=f"known: {', '.join(policy.use_cases)}",
            )
        recorder = RunRecorder.start(
            self.store,
            task=task,
            actor=actor,
            scopes=who.scopes if who else (),
            config=self.config,
            model=self.model.name,
            clock=self.clock,
            ids=self.ids,
        )
        first: AgentState = {
            "task": task,
            "actor": actor,
            "use_case": use_case,
            "messages": _GRAPHS[self.config][1](task),
            "steps": 0,
            "model_calls": 0,
            "cost_usd": 0.0,
            "replans": 0,
            "limits": self.limits.model_dump(),
            "seed": self.seed,
        }
        if converse:
            first["converse"] = True
        return await self._invoke(
            first, recorder, actor=actor, use_case=use_case, limits=self.limits, seed=self.seed
        )

    async def aresume(self, run_id: RunId, *, reason: str = "resumed") -> AgentRun:
        """Carry on a run that waits for approval (once decided) or whose process died.

        Raises:
            ConfigError: the run is unknown, has finished or waits for the requester's reply
                (carry it on with :meth:`areply`, or end it with :meth:`aend`), or the
                checkpointer holds nothing for it (it ran with another checkpointer).
        """
        events = self.store.read(run_id)
        if not events:
            raise ConfigError(f"no run {run_id} in {self.store.url}", hint="see store.run_ids()")
        finished = project_run(events)
        if finished.is_finished:
            raise ConfigError(
                f"run {run_id} has finished ({finished.status}); there is nothing to resume",
                hint="start a new run for the task",
            )
        if finished.is_awaiting_reply:
            # Resuming would only write run_resumed and stop at the same answer again.
            raise ConfigError(
                f"run {run_id} waits for the requester's reply; there is nothing to resume",
                hint="carry it on with areply(run_id, message), or end it with aend(run_id)",
            )
        config = {"configurable": {"thread_id": run_id}}
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise ConfigError(
                f"no checkpoint for run {run_id} in this checkpointer",
                hint="resume with the checkpointer the run started with; finished runs are pruned",
            )
        values = snapshot.values
        waiting = [i.value for task in snapshot.tasks for i in task.interrupts]
        if waiting and _undecided(finished, waiting[0]):
            # Nobody has decided yet: resuming would only pause again. Write nothing.
            return AgentRun(run_id, "awaiting_approval", finished, waiting[0])
        recorder, _ = RunRecorder.resume(self.store, run_id, reason=reason, clock=self.clock)
        payload: Any = Command(resume={"reason": reason}) if waiting else None
        limits = StopConditions.model_validate(values.get("limits") or self.limits.model_dump())
        return await self._invoke(
            payload,
            recorder,
            actor=values["actor"],
            use_case=values["use_case"],
            limits=limits,
            seed=values.get("seed", self.seed),
        )

    async def areply(self, run_id: RunId, message: str, *, by: str = "person") -> AgentRun:
        """Carry a conversation on with the requester's next message (``conversation.py``)."""
        recorder, values = await conversation.aprepare_reply(self, run_id, message, by=by)
        return await self._invoke(
            conversation.reply_update(self.config, values, message),
            recorder,
            actor=values["actor"],
            use_case=values["use_case"],
            limits=StopConditions.model_validate(values.get("limits") or {}),
            seed=values.get("seed", self.seed),
        )

    async def aend(
        self, run_id: RunId, *, outcome: str = "succeeded", reason: str = ""
    ) -> AgentRun:
        """End a conversation that waits for the requester, with its last answer."""
        await conversation.aend(self, run_id, outcome=outcome, reason=reason)
        await self._prune(run_id)
        return self._result(run_id, None)

    async def _invoke(
        self,
        payload: Any,
        recorder: RunRecorder,
        *,
        actor: str,
        use_case: str,
        limits: StopConditions,
        seed: int | None,
    ) -> AgentRun:
        with tracing.run_span(
            recorder.run_id,
            config=self.config,
            actor=actor,
            use_case=use_case,
            model=self.model.name,
            is_resumed=not isinstance(payload, dict),
            quiet=(NodeCancelledError,),  # an interruption, resumed later; not a failure
        ) as span:
            result = await self._invoke_graph(
                payload, recorder, actor=actor, use_case=use_case, limits=limits, seed=seed
            )
            tracing.end_run_span(
                span,
                status=result.status,
                outcome=result.state.status,
                cost_usd=sum(call.cost_usd for call in result.state.model_calls),
            )
            return result

    async def _invoke_graph(
        self,
        payload: Any,
        recorder: RunRecorder,
        *,
        actor: str,
        use_case: str,
        limits: StopConditions,
        seed: int | None,
    ) -> AgentRun:
        context = self._context(recorder, actor=actor, use_case=use_case, limits=limits, seed=seed)
        config = {"configurable": {"thread_id": recorder.run_id}}
        try:
            result = await self.graph.ainvoke(payload, config, context=context)
        except NodeCancelledError:
            # Cancelled (a shutdown, a kill): an interruption, not a failure. The run stays
            # open, to be resumed from its last checkpoint.
            raise
        except Exception as exc:
            # Whatever failed -- the model, a store, a set-up mistake -- what the run did so
            # far stays recorded, and the run is not left "running" for ever.
            code = getattr(exc, "code", type(exc).__name__)
            message = getattr(exc, "message", str(exc))
            if not project_run(self.store.read(recorder.run_id)).is_finished:
                recorder.finish("failed", reason=f"{code}: {message}")
            context.say(f"failed: {code}: {message}")
            await self._prune(recorder.run_id)
            if isinstance(exc, BackendError):
                return self._result(recorder.run_id, None)
            raise
        interrupts = result.get("__interrupt__") or []
        if interrupts:
            return self._result(recorder.run_id, interrupts[0].value)
        if (
            result.get("converse")
            and project_run(recorder.store.read(recorder.run_id)).is_awaiting_reply
        ):
            return self._result(recorder.run_id, None)  # its checkpoint carries the next turn
        await self._prune(recorder.run_id)
        return self._result(recorder.run_id, None)

    async def _prune(self, run_id: RunId) -> None:
        """Let go of what a finished run held.

        Its checkpoints (they hold its conversation; the events stay) and its browser
        session, if it had one.
        """
        browser = self.executor.resources.get("browser")
        if isinstance(browser, Browser):
            await browser.aclose_session(run_id)
        if self.prune_finished:
            await self.checkpointer.adelete_thread(run_id)

    def _context(
        self,
        recorder: RunRecorder,
        *,
        actor: str,
        use_case: str,
        limits: StopConditions,
        seed: int | None,
    ) -> AgentContext:
        policy = self.executor.policy
        tools: tuple[dict[str, Any], ...] = ()
        if self.config != "chat_rag":
            allowed = set(
                offered_tools(policy, actor=actor, use_case=use_case, tools=self.executor.tools)
            )
            has = set(self.executor.resources)
            tools = tuple(
                spec.openai_tool()
                for spec in self.executor.tools
                # a tool whose resource (a browser, a sandbox) is missing is not offered
                if spec.name in allowed and spec.resources <= has
            )
        who = policy.actors.get(actor)
        return AgentContext(
            model=self.model,
            executor=self.executor,
            recorder=recorder,
            request=CallRequest(actor=actor, use_case=use_case),
            tools=tools,
            limits=limits,
            retriever=self.retriever,
            scope=AccessScope.of_classes(who.data_classes) if who else AccessScope.nothing(),
            verifier_model=self.verifier_model,
            conversation=self.conversation,
            seed=seed,
            progress=self.progress,
            started_at=self.executor.clock.now(),
        )

    def _result(self, run_id: RunId, waiting: dict[str, Any] | None) -> AgentRun:
        state = project_run(self.store.read(run_id))
        status: Literal["finished", "awaiting_approval", "awaiting_reply"] = (
            "awaiting_approval" if waiting is not None and not state.is_finished else "finished"
        )
        if state.is_awaiting_reply:
            status = "awaiting_reply"
        return AgentRun(run_id, status, state, waiting)
