"""The graph state: plain data that LangGraph checkpoints after every node.

Messages are OpenAI-format dicts, so what the state holds is what goes over the wire.
Lists marked with ``operator.add`` grow: a node returns only what it adds.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from agentlab.llm import Message


class AgentState(TypedDict, total=False):
    """What a run's graph carries from node to node."""

    task: str
    actor: str
    use_case: str
    messages: Annotated[list[Message], operator.add]
    """The conversation with the acting model: system, task, its calls and their results."""
    evidence: Annotated[list[dict[str, Any]], operator.add]
    """Every tool outcome, as the model read it (``ToolOutcome.for_model()``, parsed)."""
    waiting: dict[str, Any] | None
    """The approval this run waits for, while it waits."""
    plan: dict[str, Any] | None
    """The multi-agent planner's current plan (a ``Plan``)."""
    findings: list[str]
    """The last failed verification's findings, for the planner."""
    steps: int
    """Tool calls made so far."""
    model_calls: int
    cost_usd: float
    replans: int
    limits: dict[str, Any]
    """The run's stop conditions, so a resume in another process keeps them."""
    seed: int | None
    """The seed sent with every model request, kept for the same reason."""
    answer: str | None
    outcome: str | None
    """``succeeded`` or ``failed``, once decided."""
    reason: str
    converse: bool
    """The run is a conversation: an answer waits for the requester's reply instead of
    ending the run (``Agent.areply`` carries it on, ``Agent.aend`` ends it)."""
    talk: Annotated[list[Message], operator.add]
    """A conversation's earlier answers and the requester's replies, in order, for nodes that
    build their own prompts (the multi-agent planner)."""
    reply: str | None
    """The requester's latest reply, while its turn is being worked on."""
    steps_at_turn: int
    """Tool calls made before the current turn of a conversation began."""
