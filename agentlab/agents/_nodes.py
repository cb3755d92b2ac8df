"""Nodes the three graphs share: ask a model, run tool calls, wait for a person, finish.

A node is thin: it takes services from the run's context and returns what it adds to the
state. Every node that learns a fact writes it to the store through the recorder.

Nodes and routers are coroutines even when they never await: LangGraph runs a plain
function in a worker thread, and that hand-off (about 0.5 ms) cost more than the node
itself, hundreds of times in a replayed suite. Like ``act``, they read and append to the
event store on the event loop, which is quick for the in-memory and DuckDB stores (a
PostgreSQL store's calls are short round trips). The exception is chat_rag's ``retrieve``,
whose vector search may take a while on a large index.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.errors import GraphBubbleUp
from langgraph.graph import StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agentlab.agents._guard import inspect_answer, spotlight
from agentlab.agents.context import AgentContext
from agentlab.agents.state import AgentState
from agentlab.core.events import StepRejected
from agentlab.llm import ChatModel, ChatRequest, ChatResponse, Message, ToolCall
from agentlab.ops import tracing
from agentlab.runtime import ToolOutcome
from agentlab.store import StepState, project_run


async def ask(
    ctx: AgentContext,
    node: str,
    messages: list[Message],
    *,
    tools: tuple[dict[str, Any], ...] = (),
    tool_choice: str | None = None,
    response_format: dict[str, Any] | None = None,
    model: ChatModel | None = None,
) -> ChatResponse:
    """Send one request and record it as a ``model_called`` event.

    The model's answer goes to the encrypted conversation log (if there is one), not into
    the event: events are read by metrics and reports, conversations by few. (Tool results
    reach the log from the executor; the task is the run's own record.)
    """
    model = model or ctx.model
    request = ChatRequest(
        messages=tuple(spotlight(ctx, messages)),
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        seed=ctx.seed,
    )
    with tracing.model_span(
        model.name, run_id=ctx.recorder.run_id, role=node, seed=ctx.seed
    ) as span:
        response = await model.acomplete(request)
        tracing.end_model_span(
            span,
            response_model=response.model,
            input_tokens=response.usage.prompt_tokens,
            output_tokens=response.usage.completion_tokens,
            finish_reasons=(response.finish_reason,),
            is_simulated=response.is_simulated,
            cost_usd=response.cost_usd,
        )
    ctx.recorder.model_called(
        node=node,
        model=response.model,
        is_simulated=response.is_simulated,
        prompt_tokens=response.usage.prompt_tokens,
        completion_tokens=response.usage.completion_tokens,
        cached_tokens=response.usage.cached_tokens,
        reasoning_tokens=response.usage.reasoning_tokens,
        cost_usd=response.cost_usd,
        latency_ms=response.latency_ms,
        waited_ms=response.waited_ms,
        finish_reason=response.finish_reason,
        tool_calls=tuple(call.name for call in response.tool_calls),
        refusal=response.refusal,
    )
    if ctx.conversation is not None:
        said = ctx.executor.dlp.mask_text(
            json.dumps(response.as_message(), ensure_ascii=False), "logs"
        )
        ctx.conversation.append(ctx.recorder.run_id, "assistant", said, at=ctx.executor.clock.now())
    simulated = " (simulator)" if response.is_simulated else ""
    structured = (response_format or {}).get("json_schema", {}).get("name")
    what = ", ".join(c.name for c in response.tool_calls) or structured or "answer"
    if response.refusal is not None:
        what = "refusal"
    ctx.say(f"{node}: {response.model}{simulated} -> {what} (${response.cost_usd:.4f})")
    return response


def spent(state: AgentState, response: ChatResponse) -> dict[str, Any]:
    """The state's running totals after ``response``."""
    return {
        "model_calls": state.get("model_calls", 0) + 1,
        "cost_usd": state.get("cost_usd", 0.0) + response.cost_usd,
    }


def limit_reached(state: AgentState, ctx: AgentContext) -> str | None:
    """The stop condition the run has reached, in words, or None."""
    limits = ctx.limits
    if state.get("steps", 0) >= limits.max_steps:
        return f"stopped: max_steps ({limits.max_steps}) reached"
    if state.get("model_calls", 0) >= limits.max_model_calls:
        return f"stopped: max_model_calls ({limits.max_model_calls}) reached"
    if state.get("cost_usd", 0.0) >= limits.max_cost_usd:
        return f"stopped: max_cost_usd ({limits.max_cost_usd}) reached"
    if ctx.elapsed_s >= limits.max_wall_time_s:
        return f"stopped: max_wall_time_s ({limits.max_wall_time_s:g}) reached"
    return None


def pending_calls(state: AgentState) -> list[ToolCall]:
    """The last assistant message's tool calls that have no result after it yet.

    Only results that follow that message count: an endpoint may reuse a call id from an
    earlier turn, and an old result must not answer a new call.
    """
    messages = state.get("messages", [])
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "assistant":
            continue
        answered = {m.get("tool_call_id") for m in messages[index + 1 :] if m.get("role") == "tool"}
        return [
            ToolCall(
                id=call["id"],
                name=call["function"]["name"],
                arguments=call["function"]["arguments"],
            )
            for call in message.get("tool_calls") or []
            if call["id"] not in answered
        ]
    return []


def turn_of(state: AgentState) -> int:
    """How many assistant messages the conversation holds: the current turn's number."""
    return sum(1 for m in state.get("messages", []) if m.get("role") == "assistant")


async def run_call(
    ctx: AgentContext, call: ToolCall, *, turn: int, existing: StepState | None
) -> ToolOutcome:
    """Carry out one tool call through the executor, exactly once across resumes.

    LangGraph runs a node again from its start when a run resumes, so the step may already
    be in the store. It is found by the model's call id, scoped to the turn (endpoints may
    reuse ids across turns), and never proposed a second time: a settled step answers from
    its record -- whatever the policy says now -- and an open one is carried on from its
    events.

    Args:
        ctx: The run's services.
        call: The model's call.
        turn: The number of the assistant message that made it.
        existing: The step the store already holds for this call, if any.
    """
    call_id = f"{turn}:{call.id}"
    if existing is None:
        return await ctx.executor.call(
            ctx.recorder, ctx.request, call.name, call.arguments, call_id=call_id
        )
    recorded = _recorded_outcome(existing)
    if recorded is not None:
        return recorded
    return await ctx.executor.continue_step(ctx.recorder, ctx.request, existing)


def _recorded_outcome(entry: StepState) -> ToolOutcome | None:
    """What a settled step's events say its outcome was; None for a step still open."""
    step, step_id = entry.step, entry.step.step_id
    if entry.status == "committed":
        if step.has_side_effect:
            message = "already done earlier; this is the recorded result"
            return ToolOutcome("replayed", step.tool, step_id, message, entry.result)
        return ToolOutcome("ok", step.tool, step_id, "done", entry.result)
    if entry.status == "rejected" and isinstance(entry.decision, StepRejected):
        decision = entry.decision
        if decision.rejected_by == "policy":
            message = f"blocked by {decision.approver}: {decision.reason}"
            return ToolOutcome("blocked", step.tool, step_id, message)
        message = f"the commit was rejected: {decision.reason}"
        return ToolOutcome("rejected", step.tool, step_id, message)
    if entry.is_preview_only:
        message = "dry-run only; nothing changed"
        return ToolOutcome("previewed", step.tool, step_id, message, entry.dry_run_diff)
    if entry.is_settled and entry.last_error is not None:  # failed for good
        error = entry.last_error
        status = "invalid" if error.error_code in _INVALID_CODES else "failed"
        return ToolOutcome(status, step.tool, step_id, error.message)  # type: ignore[arg-type]
    return None


_INVALID_CODES = frozenset({"invalid_arguments", "unknown_tool"})


async def act(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the model's pending tool calls; stop at the first that waits for a person.

    Each result goes back into the conversation as a ``tool`` message whose content marks
    the system's answer as untrusted data (``ToolOutcome.for_model``). A call that waits for
    approval gets no message yet: the run pauses, and after the decision this node carries
    the same step on. Calls beyond ``max_steps`` are not run: each gets a result saying so
    (every call of a turn must be answered), and the run stops.
    """
    ctx = runtime.context
    messages: list[Message] = []
    evidence: list[dict[str, Any]] = []
    turn = turn_of(state)
    # The run as the store tells it, read once: its steps by call id (a resumed node finds
    # its steps again), and how many tool calls it has made.
    run = project_run(ctx.recorder.store.read(ctx.recorder.run_id))
    known = {s.step.call_id: s for s in run.steps.values() if s.step.call_id is not None}
    steps = len(run.steps)
    stop: dict[str, Any] = {}
    for call in pending_calls(state):
        if f"{turn}:{call.id}" not in known and steps >= ctx.limits.max_steps:
            reason = f"stopped: max_steps ({ctx.limits.max_steps}) reached"
            not_run = {"tool": call.name, "status": "not_run", "message": reason}
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(not_run)}
            )
            stop = {"outcome": "failed", "reason": reason}
            continue
        existing = known.get(f"{turn}:{call.id}")
        outcome = await run_call(ctx, call, turn=turn, existing=existing)
        steps += existing is None  # a new call proposed a step
        ctx.say(f"  {call.name}: {outcome.status} - {outcome.message}")
        if outcome.status == "awaiting_approval":
            waiting = {
                "run_id": ctx.recorder.run_id,
                "step_id": outcome.step_id,
                "tool": outcome.tool,
                "message": outcome.message,
                "preview": outcome.content,
            }
            return {"messages": messages, "evidence": evidence, "steps": steps, "waiting": waiting}
        messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.for_model()})
        evidence.append(json.loads(outcome.for_model()))
    return {"messages": messages, "evidence": evidence, "steps": steps, "waiting": None, **stop}


async def await_approval(state: AgentState) -> dict[str, Any]:
    """Pause the run until a person has answered the approval request.

    The decision itself goes to the store (``ApprovalQueue`` or ``agentlab approvals``);
    the graph is then resumed, and ``act`` carries the step on from what the store holds.
    """
    interrupt(state["waiting"])
    return {"waiting": None}


async def after_act(state: AgentState) -> str:
    """Where to go after ``act``: to the approval wait, or on."""
    return "await_approval" if state.get("waiting") else "next"


async def finish(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Record the end of the run: its outcome, answer and reason."""
    ctx = runtime.context
    outcome = state.get("outcome") or "failed"
    answer = state.get("answer")
    reason = state.get("reason", "")
    if answer:
        answer = inspect_answer(ctx, state["task"], answer)
        ctx.recorder.artifact("answer", answer, media_type="text/plain")
    if state.get("converse") and outcome == "succeeded" and answer:
        # A conversation: the answer may be a question; the requester's reply decides.
        turn = sum(1 for m in state.get("talk", []) if m.get("role") == "user") + 1
        ctx.recorder.replied(answer, turn=turn)
        ctx.say(f"turn {turn}: waiting for the requester")
        return {}
    ctx.recorder.finish(outcome, answer=answer, reason=reason)  # type: ignore[arg-type]
    ctx.say(f"finished: {outcome}" + (f" ({reason})" if reason else ""))
    return {}


def trace_nodes(graph: StateGraph[Any, Any, Any, Any]) -> None:
    """Wrap each node of an uncompiled graph in a ``node <name>`` span, if tracing is on.

    The wrapper runs the node's own runnable, which injects the runtime as before. An
    interrupt (a wait for approval) ends the span without marking it as an error. Without
    tracing the graph is left as it is: the wrapper costs a runnable layer per node, which
    replays of thousands of runs should not pay for spans nobody records. So configure
    tracing before building the agent (the gateway builds one per run).
    """
    if not tracing.is_tracing():
        return
    for name, spec in graph.nodes.items():
        spec.runnable = _traced(name, spec.runnable)


def _traced(name: str, runnable: Any) -> Any:
    async def anode(state: Any, config: RunnableConfig) -> Any:
        with tracing.node_span(name, run_id=_run_id(config), quiet=(GraphBubbleUp,)):
            return await runnable.ainvoke(state, config)

    def node(state: Any, config: RunnableConfig) -> Any:
        with tracing.node_span(name, run_id=_run_id(config), quiet=(GraphBubbleUp,)):
            return runnable.invoke(state, config)

    return RunnableLambda(node, anode, name=name)


def _run_id(config: RunnableConfig) -> str | None:
    thread = (config.get("configurable") or {}).get("thread_id")
    return thread if isinstance(thread, str) else None
