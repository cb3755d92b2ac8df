r"""The events that tell a run's life, as a tagged union.

Every fact about a run is one of these, appended to the store and never changed. Names are in
the past tense; ``kind`` is the tag that a stored row carries. A run's current state is a fold
over its events (``agentlab.store.projection``), which is what makes resume and audit possible.

Typical order for a governed write::

    run_started
    step_proposed -> step_dry_run_completed -> step_approved -> step_committed
                                             \\-> step_rejected
                  -> step_failed -> step_retried -> ... -> step_committed
    artifact_recorded  model_called  verified  run_resumed  run_finished
    agent_replied -> user_replied -> ... -> run_finished   (a conversation: multi-turn tasks)
    injection_detected  dlp_detected  exfiltration_blocked     (the security layers)
"""

from __future__ import annotations

from typing import Annotated, Literal, Self, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from agentlab.core.errors import InvalidEvent
from agentlab.core.ids import IdempotencyKey, RunId, StepId
from agentlab.core.records import Artifact, Run, Step


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    run_id: RunId
    seq: int = Field(ge=0)
    """Position in the run's log, from 0; (run_id, seq) is unique in a store."""
    at: AwareDatetime
    """When it happened, from the run's Clock."""


class RunStarted(_Event):
    """A request arrived and a run began."""

    kind: Literal["run_started"] = "run_started"
    run: Run

    @model_validator(mode="after")
    def _same_run(self) -> Self:
        if self.run.run_id != self.run_id:
            raise ValueError(f"run.run_id {self.run.run_id!r} differs from run_id {self.run_id!r}")
        return self


class StepProposed(_Event):
    """The planner proposed a tool call; nothing has run yet."""

    kind: Literal["step_proposed"] = "step_proposed"
    step: Step

    @model_validator(mode="after")
    def _same_run(self) -> Self:
        if self.step.run_id != self.run_id:
            raise ValueError(
                f"step.run_id {self.step.run_id!r} differs from run_id {self.run_id!r}"
            )
        return self


class _StepEvent(_Event):
    step_id: StepId


class StepDryRunCompleted(_StepEvent):
    """The tool ran in dry-run mode; ``diff`` is what a commit would change."""

    kind: Literal["step_dry_run_completed"] = "step_dry_run_completed"
    diff: JsonValue
    is_final: bool = False
    """True when no commit follows: the autonomy phase allows only dry-runs, or the caller
    asked for a preview. False when the step now waits for approval."""


Approver = Literal["human", "policy"]


class StepApproved(_StepEvent):
    """A human or a policy rule approved the commit of a step."""

    kind: Literal["step_approved"] = "step_approved"
    approver: str = Field(min_length=1)
    """Who approved: a person's id, or the name of the policy rule."""
    approved_by: Approver
    reason: str = ""
    edited_arguments: dict[str, JsonValue] | None = None
    """Set when the reviewer changed the arguments before approving (counts as rework)."""


class StepRejected(_StepEvent):
    """A human or a policy rule refused the commit of a step; it will not run."""

    kind: Literal["step_rejected"] = "step_rejected"
    approver: str = Field(min_length=1)
    rejected_by: Approver
    reason: str = Field(min_length=1)


class StepCommitted(_StepEvent):
    """The step ran for real and its result is recorded."""

    kind: Literal["step_committed"] = "step_committed"
    idempotency_key: IdempotencyKey | None
    """The side effect's key (None only for reads); a store refuses a key committed twice."""
    result: JsonValue
    latency_ms: float = Field(ge=0)


class StepFailed(_StepEvent):
    """An attempt at the step failed."""

    kind: Literal["step_failed"] = "step_failed"
    error_code: str = Field(min_length=1)
    message: str
    is_retryable: bool


class StepRetried(_StepEvent):
    """The step is tried again after a retryable failure."""

    kind: Literal["step_retried"] = "step_retried"
    attempt: int = Field(ge=2)
    """The attempt that starts now: 2 for the first retry."""
    backoff_ms: int = Field(ge=0)


class ArtifactRecorded(_Event):
    """An output or piece of evidence was kept."""

    kind: Literal["artifact_recorded"] = "artifact_recorded"
    artifact: Artifact

    @model_validator(mode="after")
    def _same_run(self) -> Self:
        if self.artifact.run_id != self.run_id:
            raise ValueError(
                f"artifact.run_id {self.artifact.run_id!r} differs from run_id {self.run_id!r}"
            )
        return self


class ModelCalled(_Event):
    """A model answered one request of the run: what it cost, how long it took, what it chose.

    Prompts and answers are not kept here (they may carry personal data); they go to the
    encrypted conversation log. Cost and tokens are here because metrics sum them.
    """

    kind: Literal["model_called"] = "model_called"
    node: str = Field(min_length=1)
    """The graph node that asked: ``agent``, ``planner``, ``verifier``, ``answer``."""
    model: str = Field(min_length=1)
    """The model as the endpoint named it in its answer."""
    is_simulated: bool
    """True when the answer came from agentlab's offline simulator, not a vendor's model."""
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    """Prompt tokens the endpoint served from its cache (billed at the cached price)."""
    reasoning_tokens: int = Field(default=0, ge=0)
    """Completion tokens spent on hidden reasoning (already counted in completion_tokens)."""
    cost_usd: float = Field(ge=0)
    latency_ms: float = Field(ge=0)
    """Wall time of the request, retries included, budget waits excluded."""
    waited_ms: float = Field(default=0, ge=0)
    """Time spent waiting for the LLM budget (requests or tokens per minute) before sending."""
    finish_reason: str = ""
    tool_calls: tuple[str, ...] = ()
    """The names of the tools the model asked for, in order."""
    refusal: str | None = None
    """The model's refusal text, when it refused."""


class Verified(_Event):
    """A verifier (rules, tests or a model) checked a step or the whole run."""

    kind: Literal["verified"] = "verified"
    step_id: StepId | None = None
    """The step checked; None when the verdict is on the run's outcome."""
    verifier: str = Field(min_length=1)
    """Which verifier: ``rules``, ``tests``, ``model:<name>``."""
    passed: bool
    findings: tuple[str, ...] = ()


class InjectionDetected(_Event):
    """Instruction-like text was found in data the run read (a tool result, a document).

    The detector's score and signals, and what was done: the text went on to the model
    marked as suspect (``flagged``), or was cut out before any model read it
    (``quarantined``). The excerpt is clipped; it is the attacker's text, kept as evidence.
    """

    kind: Literal["injection_detected"] = "injection_detected"
    step_id: StepId | None = None
    """The step whose result carried it; None for a retrieved document."""
    source: str = Field(min_length=1)
    """Where it was found: ``tool:search_kb``, ``document:KB-IT-006``."""
    score: float = Field(ge=0, le=1)
    signals: tuple[str, ...] = ()
    """Which of the detector's signals fired (``override``, ``exfiltration`` ...)."""
    action: Literal["flagged", "quarantined"]
    excerpt: str = Field(default="", max_length=400)


DlpPlace = Literal["answer", "tool_arguments", "tool_results", "logs"]


class DlpDetected(_Event):
    """Personal or secret data was found on its way somewhere; the values are never kept."""

    kind: Literal["dlp_detected"] = "dlp_detected"
    step_id: StepId | None = None
    """The step whose arguments or result held it; None for the answer."""
    place: DlpPlace
    """Where the data was going: the answer, a tool's arguments, a tool's result, the logs."""
    kinds: tuple[str, ...] = Field(min_length=1)
    """The kinds found (``card_number``, ``api_key`` ...), each once."""
    count: int = Field(ge=1)
    """How many values were found in all."""
    action: Literal["allowed", "masked", "blocked"]
    """The strictest action taken: ``blocked`` refused the call or withheld the answer."""


class ExfiltrationBlocked(_Event):
    """Output inspection stopped something from leaving: a write's arguments or the answer.

    A destination (address, URL) the requester's task never named, or the marking of a data
    class the actor may not see.
    """

    kind: Literal["exfiltration_blocked"] = "exfiltration_blocked"
    step_id: StepId | None = None
    """The write that was refused; None when the answer was redacted."""
    place: Literal["tool_arguments", "answer"]
    targets: tuple[str, ...] = Field(min_length=1)
    """The addresses and URLs, or ``class:<data class>`` for a marking."""
    reason: str = Field(min_length=1)


class RunResumed(_Event):
    """The run continued after an interruption, from the events already written."""

    kind: Literal["run_resumed"] = "run_resumed"
    reason: str = ""


class AgentReplied(_Event):
    """In a conversation, the agent answered (or asked back) and now waits for the requester.

    The run stays open: the requester's next message (:class:`UserReplied`) carries it on, and
    ``run_finished`` is written only when the conversation ends.
    """

    kind: Literal["agent_replied"] = "agent_replied"
    answer: str
    turn: int = Field(ge=1)
    """The agent's turn that ended with this answer, from 1."""


class UserReplied(_Event):
    """The requester's next message in a conversation, after an ``agent_replied``."""

    kind: Literal["user_replied"] = "user_replied"
    message: str = Field(min_length=1)
    turn: int = Field(ge=1)
    """The agent's turn this message starts, from 2."""
    by: Literal["person", "scripted", "model"] = "person"
    """Who wrote it: a person, the lab's scripted requester, or a model playing one."""


RunOutcome = Literal["succeeded", "failed", "cancelled"]


class RunFinished(_Event):
    """The run ended; nothing is appended after this event."""

    kind: Literal["run_finished"] = "run_finished"
    outcome: RunOutcome
    answer: str | None = None
    reason: str = ""


Event = Annotated[
    RunStarted
    | StepProposed
    | StepDryRunCompleted
    | StepApproved
    | StepRejected
    | StepCommitted
    | StepFailed
    | StepRetried
    | ArtifactRecorded
    | ModelCalled
    | Verified
    | InjectionDetected
    | DlpDetected
    | ExfiltrationBlocked
    | RunResumed
    | AgentReplied
    | UserReplied
    | RunFinished,
    Field(discriminator="kind"),
]
"""Any run event; ``kind`` tells which."""

EVENT: TypeAdapter[Event] = TypeAdapter(Event)
"""Validates an event from a dict or JSON; every store reads rows back through it."""

EVENT_KINDS: frozenset[str] = frozenset(
    member.model_fields["kind"].default for member in get_args(get_args(Event)[0])
)
"""Every ``kind`` tag this version of agentlab knows."""


def step_id_of(event: Event) -> StepId | None:
    """The step an event is about, if any: the proposed step, an artifact's step, or step_id."""
    if isinstance(event, StepProposed):
        return event.step.step_id
    if isinstance(event, ArtifactRecorded):
        return event.artifact.step_id
    return getattr(event, "step_id", None)


def idempotency_key_of(event: Event) -> str | None:
    """The idempotency key an event carries: a proposed write's, or a commit's."""
    if isinstance(event, StepProposed):
        return event.step.idempotency_key
    return getattr(event, "idempotency_key", None)


def parse_event(raw: str | bytes, *, where: str) -> Event:
    """Parse one stored event, or raise :class:`InvalidEvent` naming where it came from.

    Args:
        raw: The event's JSON.
        where: Where the row came from, e.g. ``"duckdb:///runs.duckdb run_1 seq 4"``.
    """
    try:
        return EVENT.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        hint = None
        if first["type"] == "union_tag_invalid":
            hint = "the event kind is unknown to this agentlab; was it written by a newer version?"
        raise InvalidEvent(
            f"{where}: stored event does not parse: field {field!r}: {first['msg']}", hint=hint
        ) from exc


def ensure_events(items: object) -> list[Event]:
    """Check that ``items`` is a sequence of events before a store writes anything.

    Raises:
        InvalidEvent: naming the position and type of the first item that is not an event.
    """
    # A pydantic model iterates over its fields, so a lone event must be caught by type.
    if isinstance(items, (str, bytes, BaseModel)) or not hasattr(items, "__iter__"):
        raise InvalidEvent(f"append() takes a list of events, got {type(items).__name__}")
    events = list(items)  # type: ignore[call-overload]
    for index, item in enumerate(events):
        if not isinstance(item, _Event):
            raise InvalidEvent(
                f"item {index} of the batch is a {type(item).__name__}, not an event",
                hint="build events with the classes in agentlab.core.events, "
                "or parse dicts with EVENT.validate_python(...)",
            )
    return events
