r"""``single``: one model plans and calls tools in a loop.

::

    START -> plan -> act -> reflect -> plan ...            plan answers -> finish -> END
                      \\-> await_approval -> act (after a person decides)

``plan`` asks the model for its next tool calls (or its answer); ``act`` sends them through
the executor, where policy, dry-run, approval and idempotency live, and puts the results
back into the conversation as untrusted data; ``reflect`` checks the stop conditions before
the model is asked again.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agentlab.agents import prompts
from agentlab.agents._nodes import act, after_act, ask, await_approval, finish, limit_reached, spent
from agentlab.agents.context import AgentContext
from agentlab.agents.state import AgentState


def start_messages(task: str) -> list[dict[str, Any]]:
    """The conversation a ``single`` run begins with."""
    return [{"role": "system", "content": prompts.AGENT}, {"role": "user", "content": task}]


async def plan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the model for its next tool calls, or for its answer."""
    ctx = runtime.context
    response = await ask(ctx, "agent", state["messages"], tools=ctx.tools)
    update: dict[str, Any] = {"messages": [response.as_message()], **spent(state, response)}
    if response.refusal is not None:
        update |= {"answer": response.refusal, "outcome": "failed", "reason": "the model refused"}
    elif not response.tool_calls:
        update |= {"answer": response.content or "", "outcome": "succeeded"}
    return update


async def reflect(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Look at where the run stands before asking the model again: stop if a limit is hit."""
    if reason := limit_reached(state, runtime.context):
        return {"outcome": "failed", "reason": reason}
    return {}


async def _after_plan(state: AgentState) -> str:
    return "finish" if state.get("outcome") else "act"


async def _after_reflect(state: AgentState) -> str:
    return "finish" if state.get("outcome") else "plan"


def build_single_graph() -> StateGraph[AgentState, AgentContext, Any, Any]:
    """The ``single`` graph, not yet compiled (compile it with a checkpointer)."""
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("plan", plan)
    graph.add_node("act", act)
    graph.add_node("await_approval", await_approval)
    graph.add_node("reflect", reflect)
    graph.add_node("finish", finish)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _after_plan, ["act", "finish"])
    graph.add_conditional_edges(
        "act", after_act, {"await_approval": "await_approval", "next": "reflect"}
    )
    graph.add_edge("await_approval", "act")
    graph.add_conditional_edges("reflect", _after_reflect, ["plan", "finish"])
    graph.add_edge("finish", END)
    return graph
