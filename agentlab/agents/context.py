"""What a graph's nodes work with: the run's services and its stop conditions.

Services are given to LangGraph as the run's *context*, never put into graph state: state is
checkpointed (and must survive a restart as plain data), while a model client, an executor
or a recorder belong to the process that runs the graph now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentlab.llm import ChatModel
from agentlab.rag import AccessScope, Retriever
from agentlab.runtime import CallRequest, Executor
from agentlab.store import RunRecorder
from agentlab.store.conversation import ConversationLog


class StopConditions(BaseModel):
    """When a run must stop even though the agent has not finished.

    A run that reaches one is recorded as ``failed`` with the condition as its reason.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_steps: int = Field(default=12, ge=1)
    """Most tool calls a run may make, retries by the executor not counted."""
    max_model_calls: int = Field(default=24, ge=1)
    """Most requests a run may send to models (planner, agent and verifier together)."""
    max_cost_usd: float = Field(default=0.50, gt=0)
    """Most a run may spend on models, at the price table's prices."""
    max_wall_time_s: float = Field(default=300.0, gt=0)
    """Longest a run may work, per stretch: time spent waiting for a person to approve a
    step does not count, and a resumed run gets the full time again."""
    max_replans: int = Field(default=2, ge=0)
    """How often the multi-agent planner may plan again after a failed verification."""


Progress = Callable[[str], None]
"""Receives one line per notable moment (a model call, a tool outcome, a wait)."""


@dataclass
class AgentContext:
    """The run-scoped services a graph's nodes use.

    Args:
        model: Answers the planner, the agent and (by default) the verifier.
        executor: Runs every tool call under policy; the only way to a system.
        recorder: Writes the run's events.
        request: The actor and use case, for policy.
        tools: The tools offered to the model, in OpenAI format; only those the policy allows
            this actor in this use case.
        limits: When to stop.
        retriever: Knowledge for ``chat_rag``; None when the configuration reads none.
        scope: What the actor may retrieve; deny-all if None.
        verifier_model: A second model for the verifier; ``model`` if None.
        conversation: Where the text models read and write is kept, encrypted.
        seed: Sent with every request, for endpoints that take one.
        progress: Told about model calls and tool outcomes as they happen.
    """

    model: ChatModel
    executor: Executor
    recorder: RunRecorder
    request: CallRequest
    tools: tuple[dict[str, Any], ...]
    limits: StopConditions = field(default_factory=StopConditions)
    retriever: Retriever | None = None
    scope: AccessScope | None = None
    verifier_model: ChatModel | None = None
    conversation: ConversationLog | None = None
    seed: int | None = None
    progress: Progress | None = None
    retrieved_k: int = 5
    """How many chunks ``chat_rag`` retrieves for a question."""
    started_at: datetime | None = None
    """When this stretch of work began, by the executor's clock, for ``max_wall_time_s``."""

    def say(self, line: str) -> None:
        """Pass a progress line on, if anyone listens."""
        if self.progress is not None:
            self.progress(line)

    @property
    def elapsed_s(self) -> float:
        """Seconds since this stretch of work began, by the executor's clock.

        The injected clock, not the host's: a replay on a recorded clock stops where the
        recording did.
        """
        if self.started_at is None:
            return 0.0
        return (self.executor.clock.now() - self.started_at).total_seconds()
