"""What the gateway's endpoints take and return: the OpenAPI spec is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from agentlab.core.events import Event

RUN_ID_PATTERN = r"^run_[0-9a-f]{24}$"
STEP_ID_PATTERN = r"^step_[0-9a-f]{24}$"
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]

RunStatus = Literal["queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class RunRequest(_Body):
    """A task for an agent, for an actor, in a use case."""

    task: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4000,
            pattern=r"\S",
            examples=["Order 16 TONER-BK-05 from SUP-000103."],
        ),
    ]
    """What the requester asks, in their words."""
    actor: Annotated[Name | None, Field(examples=["alice"])] = None
    """Who the run acts for; the token's actor if left out. Another actor needs the
    ``runs:submit_as`` scope."""
    use_case: Annotated[Name, Field(examples=["procurement"])]
    """The policy's use case (``procurement``, ``helpdesk`` ...); the actor must be allowed it."""
    config: Literal["chat_rag", "single", "multi"] = "single"
    """The agent configuration."""
    model: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """The model; the gateway's default (a simulator profile, ``sim-large``) if left out."""


class Decision(_Body):
    """A person's answer to an approval request."""

    reason: Annotated[str, Field(max_length=2000)] = ""
    """Why; kept in the run and the audit log, and read by the model after a rejection."""
    edited_arguments: dict[str, JsonValue] | None = None
    """Approve with these arguments instead (counted as rework); validated like the model's."""


class Rejection(_Body):
    """A person's refusal of a commit."""

    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
    """Why; the model reads it."""


class ErrorBody(BaseModel):
    """What went wrong, and what to do next."""

    code: str
    message: str
    hint: str | None = None


class FieldError(BaseModel):
    """One invalid field, as FastAPI reports it."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(ErrorBody):
    """A malformed request: ``message`` names the fields, ``detail`` has each one."""

    detail: list[FieldError]


class StepView(BaseModel):
    """One tool call of a run."""

    step_id: str
    tool: str
    status: str
    """``proposed``, ``dry_run``, ``approved``, ``rejected``, ``committed`` or ``failed``."""
    idempotency_key: str | None
    is_waiting: bool
    """True while the step waits for a person."""


class RunView(BaseModel):
    """A run as its events tell it."""

    run_id: str
    status: RunStatus
    task: str
    actor: str
    config: str | None
    model: str | None
    use_case: str | None
    """Known for runs this gateway started (events do not record it)."""
    started_at: datetime | None
    finished_at: datetime | None
    answer: str | None
    reason: str
    """Why the run ended, or why it waits."""
    cost_usd: float
    model_calls: int
    steps: list[StepView]
    last_seq: int
    """The seq of the run's latest event: follow with ``/events?after=<last_seq>``."""
    degraded_by: str | None = None
    """The SLO whose spent error budget sent this run to the fallbacks, if one did."""


class RunAccepted(BaseModel):
    """A run that was accepted; it works in the background."""

    run_id: str
    status: RunStatus
    degraded_by: str | None = None
    """Set when an SLO's budget is spent and the use case's fallbacks take the run."""
    links: dict[str, str]


class EventPage(BaseModel):
    """Events of a run after a cursor."""

    run_id: str
    status: RunStatus
    events: list[Event]
    next_after: int
    """Pass as ``after`` to get the events that follow."""
    is_finished: bool


class ApprovalView(BaseModel):
    """A commit waiting for a person: what would change, for whom."""

    approval_id: str
    """The step's id; answer with ``POST /approvals/{approval_id}/approve`` or ``/reject``."""
    run_id: str
    step_id: str
    actor: str
    task: str
    tool: str
    scope: str
    """The tool's scope; deciding needs it."""
    arguments: dict[str, JsonValue]
    preview: JsonValue
    """The dry-run's result and diff: what the commit would do."""


class ApprovalAnswered(BaseModel):
    """A recorded decision; an approved run resumes in the background and commits once."""

    approval_id: str
    run_id: str
    decision: Literal["approved", "rejected"]
    status: RunStatus


class AuditView(BaseModel):
    """Audit records and the chain's head."""

    records: list[dict[str, Any]]
    head_seq: int
    head_hash: str
    next_after: int


class ChainView(BaseModel):
    """What checking the audit chain found."""

    is_intact: bool
    checked: int
    first_bad_seq: int | None
    problem: str
    head_hash: str


class SLOView(BaseModel):
    """One SLO's standing for a use case."""

    use_case: str
    slo: str
    kpi: str
    target: float
    objective: Literal["at_least", "at_most"]
    value: float | None
    runs: int | None
    budget_spent: float | None
    error_budget_remaining: float | None
    burn_rate: float | None
    is_exhausted: bool
    summary: str


class Health(BaseModel):
    """The gateway is up."""

    status: Literal["ok"]
    version: str
