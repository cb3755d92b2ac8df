"""Conversations: carry a run on with the requester's next message, in any configuration.

A run started with ``converse=True`` does not end when the agent answers: its answer (often
a question back) is recorded as ``agent_replied`` and the run waits. The requester's reply
is recorded as ``user_replied`` and goes into the graph's state the way each configuration
reads a request; the graph then runs again from its start, with everything it already knew.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

from agentlab.core.errors import ConfigError
from agentlab.core.ids import RunId
from agentlab.store import RunRecorder, RunState, project_run

if TYPE_CHECKING:
    from agentlab.agents.runner import Agent

Author = Literal["person", "scripted", "model"]


def requested(state: dict[str, Any]) -> str:
    """The task as the requester has put it so far: the opening text, then each reply."""
    replies = [m["content"] for m in state.get("talk") or [] if m.get("role") == "user"]
    return "\n".join([state["task"], *replies])


def reply_update(config: str, values: dict[str, Any], message: str) -> dict[str, Any]:
    """What a reply adds to a conversation's graph state before its next turn runs.

    Args:
        config: The run's configuration (``chat_rag``, ``single`` or ``multi``).
        values: The graph's state as checkpointed when the agent replied.
        message: The requester's reply.
    """
    answer = values.get("answer") or ""
    user = {"role": "user", "content": message}
    update: dict[str, Any] = {
        "outcome": None,
        "answer": None,
        "reason": "",
        "waiting": None,
        "reply": message,
        "steps_at_turn": values.get("steps", 0),
        "talk": [{"role": "assistant", "content": answer}, user],
    }
    if config == "single":
        # The acting model reads its own conversation: the question is in it already.
        update["messages"] = [user]
    elif config == "multi":
        # The planner reads the talk; the acting model's conversation, once it has one,
        # gets the reply too (its first instructions are written by the planner).
        update |= {
            "findings": [],
            "replans": 0,
            "messages": [user] if values.get("messages") else [],
        }
    # chat_rag: ``retrieve`` reads the reply as the question, with the documents it finds.
    return update


async def aprepare_reply(
    agent: Agent, run_id: RunId, message: str, *, by: str = "person"
) -> tuple[RunRecorder, dict[str, Any]]:
    """Record the requester's reply to a run that waits for one; its recorder and graph state.

    Raises:
        ConfigError: the run is unknown, is not waiting for a reply, or its checkpoint is gone.
    """
    if not message.strip():
        raise ConfigError("a reply needs some text", hint="pass the requester's message")
    if by not in ("person", "scripted", "model"):
        raise ConfigError(f"unknown author {by!r} of a reply", hint="person, scripted or model")
    state = _waiting(agent, run_id)
    snapshot = await agent.graph.aget_state({"configurable": {"thread_id": run_id}})
    if not snapshot.values:
        raise ConfigError(
            f"no checkpoint for run {run_id} in this checkpointer",
            hint="reply through the agent (and checkpointer) the conversation started with",
        )
    recorder = RunRecorder.attach(agent.store, run_id, clock=agent.clock, ids=agent.ids)
    turn = sum(1 for t in state.turns if t.kind == "agent_replied") + 1
    recorder.user_replied(message, turn=turn, by=cast(Author, by))
    return recorder, dict(snapshot.values)


async def aend(agent: Agent, run_id: RunId, *, outcome: str, reason: str) -> None:
    """Write ``run_finished`` for a conversation that waits for the requester.

    Raises:
        ConfigError: the run is unknown or is not waiting for a reply.
    """
    if outcome not in ("succeeded", "failed", "cancelled"):
        raise ConfigError(f"unknown outcome {outcome!r}", hint="succeeded, failed or cancelled")
    state = _waiting(agent, run_id)
    recorder = RunRecorder.attach(agent.store, run_id, clock=agent.clock, ids=agent.ids)
    recorder.finish(outcome, answer=state.answer, reason=reason)  # type: ignore[arg-type]


def _waiting(agent: Agent, run_id: RunId) -> RunState:
    events = agent.store.read(run_id)
    if not events:
        raise ConfigError(f"no run {run_id} in {agent.store.url}", hint="see store.run_ids()")
    state = project_run(events)
    if not state.is_awaiting_reply:
        raise ConfigError(
            f"run {run_id} is not waiting for a reply ({state.status})",
            hint="only a run started with converse=True whose agent has answered takes one",
        )
    return state
