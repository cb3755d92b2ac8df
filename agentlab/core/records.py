"""Run -> Step -> Artifact: the article's state model.

A :class:`Run` is one request, a :class:`Step` one tool execution, an :class:`Artifact` an
output or a piece of evidence. They are small frozen records: what happens to them over time
is told by events (``agentlab.core.events``), and their current state is a projection of those
events (``agentlab.store.projection``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

from agentlab.core.ids import ArtifactId, IdempotencyKey, RunId, StepId


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Run(_Record):
    """One request an agent works on, from its arrival to its end."""

    run_id: RunId
    task: str = Field(min_length=1)
    """What was asked, as the requester said it."""
    actor: str = Field(min_length=1)
    """Who asked; policy decides what this actor may see and do."""
    scopes: tuple[str, ...] = ()
    """The actor's granted scopes, e.g. ``erp:read``."""
    config: str | None = None
    """The agent configuration (``chat_rag``, ``single``, ``multi``), if any."""
    model: str | None = None
    """The model that drives the run, as its profile or endpoint names it."""
    started_at: AwareDatetime


class SideEffect(StrEnum):
    """Whether a step only reads or also changes a system."""

    READ = "read"
    WRITE = "write"


class Step(_Record):
    """One tool execution within a run.

    A step that writes (``side_effect="write"``) must carry an ``idempotency_key``:
    constructing one without a key is a validation error, so no code path can commit a side
    effect that a retry could repeat.
    """

    step_id: StepId
    run_id: RunId
    position: int = Field(ge=0)
    """0-based position of the step in its run."""
    tool: str = Field(min_length=1)
    arguments: dict[str, JsonValue]
    """The tool's arguments as the model proposed them (validated later by the executor)."""
    side_effect: SideEffect
    idempotency_key: IdempotencyKey | None = None
    """Required for writes; a retry or a resume with the same key is a no-op."""
    call_id: str | None = None
    """The id of the model's tool call this step carries out, when a model proposed it; a
    graph node that runs again after a resume finds its step by it instead of proposing a
    second one."""

    @model_validator(mode="after")
    def _writes_carry_a_key(self) -> Self:
        if self.side_effect is SideEffect.WRITE and self.idempotency_key is None:
            raise ValueError(
                f"step {self.step_id} of tool {self.tool!r} has a side effect but no "
                "idempotency_key; derive one with agentlab.core.ids.derive_idempotency_key"
            )
        return self

    @property
    def has_side_effect(self) -> bool:
        """True when the step changes a system."""
        return self.side_effect is SideEffect.WRITE


class Artifact(_Record):
    """An output or a piece of evidence: a tool result, a diff, a screenshot, an answer."""

    artifact_id: ArtifactId
    run_id: RunId
    step_id: StepId | None = None
    """The step that produced it; None for run-level artifacts such as the final answer."""
    kind: str = Field(min_length=1, max_length=64)
    """What it is: ``observation``, ``evidence``, ``diff``, ``screenshot``, ``answer``, ..."""
    media_type: str = "application/json"
    content: JsonValue = None
    """Small content inline; large content goes to ``uri``."""
    uri: str | None = None
    """Where large content lives (a file path or URL), if not inline."""
