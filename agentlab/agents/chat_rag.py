"""``chat_rag``: retrieve what the actor may read, and answer. No tools, no side effects.

::

    START -> retrieve -> answer -> finish -> END

The retrieved chunks go into the prompt fenced as untrusted data, and which documents were
retrieved is recorded (an ``retrieval`` artifact), so a grader can check that no chunk
outside the actor's data classes ever reached a model.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agentlab.agents import prompts
from agentlab.agents._nodes import ask, finish, spent
from agentlab.agents.context import AgentContext
from agentlab.agents.state import AgentState
from agentlab.rag import AccessScope, render_hits_for_prompt


def start_messages(task: str) -> list[dict[str, Any]]:
    """The conversation a ``chat_rag`` run begins with (documents are added by retrieve)."""
    return [{"role": "system", "content": prompts.CHAT}]


def retrieve(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Find the chunks closest to the task within the actor's scope; record which."""
    ctx = runtime.context
    scope = ctx.scope or AccessScope.nothing()
    query = state.get("reply") or state["task"]  # in a conversation, the requester's reply
    hits = ctx.retriever.retrieve(query, scope, ctx.retrieved_k) if ctx.retriever else []
    ctx.recorder.artifact(
        "retrieval",
        {
            "query": query,
            "data_classes": sorted(scope.data_classes),
            "hits": [
                {"doc_id": h.doc_id, "chunk_no": h.chunk_no, "data_class": h.data_class}
                for h in hits
            ],
        },
    )
    ctx.say(f"retrieve: {len(hits)} chunk(s) from {len({h.doc_id for h in hits})} document(s)")
    user = {"role": "user", "content": f"{query}\n\n{render_hits_for_prompt(hits)}"}
    return {"messages": [user]}


async def answer(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the model for the answer, with no tools."""
    response = await ask(runtime.context, "answer", state["messages"])
    update: dict[str, Any] = {"messages": [response.as_message()], **spent(state, response)}
    if response.refusal is not None:
        return update | {"answer": response.refusal, "outcome": "failed", "reason": "refused"}
    return update | {"answer": response.content or "", "outcome": "succeeded"}


def build_chat_rag_graph() -> StateGraph[AgentState, AgentContext, Any, Any]:
    """The ``chat_rag`` graph, not yet compiled."""
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("retrieve", retrieve)
    graph.add_node("answer", answer)
    graph.add_node("finish", finish)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "answer")
    graph.add_edge("answer", "finish")
    graph.add_edge("finish", END)
    return graph
