"""A run's current state, computed from its events.

The store keeps only events; this fold turns them into what a person or a resuming runner
wants to know: where each step stands, what was committed under which key, what is left to
do. Because it is a pure function of the log, two replays of the same events give the same
state, and a crashed run's state is exactly what was written before the crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import JsonValue

from agentlab.core.errors import InvalidEvent
from agentlab.core.events import (
    AgentReplied,
    ArtifactRecorded,
    Event,
    ModelCalled,
    RunFinished,
    RunResumed,
    RunStarted,
    StepApproved,
    StepCommitted,
    StepDryRunCompleted,
    StepFailed,
    StepProposed,
    StepRejected,
    StepRetried,
    UserReplied,
    Verified,
)
from agentlab.core.ids import StepId
from agentlab.core.records import Artifact, Run, Step

StepStatus = Literal["proposed", "dry_run", "approved", "rejected", "committed", "failed"]
RunStatus = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass(slots=True)
class StepState:
    """Where one step stands."""

    step: Step
    status: StepStatus = "proposed"
    attempts: int = 1
    dry_run_diff: JsonValue = None
    is_preview_only: bool = False
    """The dry-run was the whole step: nothing is to be committed (see ``is_final``)."""
    decision: StepApproved | StepRejected | None = None
    """The last approval or rejection, if any."""
    result: JsonValue = None
    last_error: StepFailed | None = None
    latency_ms: float | None = None

    @property
    def is_settled(self) -> bool:
        """True when nothing is left to do: committed, rejected, previewed, or failed for good."""
        if self.status == "failed":
            return self.last_error is not None and not self.last_error.is_retryable
        if self.status == "dry_run":
            return self.is_preview_only
        return self.status in ("committed", "rejected")

    @property
    def was_reworked(self) -> bool:
        """True when a reviewer rejected the step or edited its arguments before approving."""
        if isinstance(self.decision, StepRejected):
            return True
        return (
            isinstance(self.decision, StepApproved) and self.decision.edited_arguments is not None
        )


@dataclass(slots=True)
class RunState:
    """A run as its events tell it so far."""

    run: Run
    status: RunStatus = "running"
    steps: dict[StepId, StepState] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    verdicts: list[Verified] = field(default_factory=list)
    model_calls: list[ModelCalled] = field(default_factory=list)
    """Every answered model request, in order; sum their ``cost_usd`` for the run's cost."""
    answer: str | None = None
    last_seq: int = 0
    times_resumed: int = 0
    finished_at: datetime | None = None
    turns: list[AgentReplied | UserReplied] = field(default_factory=list)
    """A conversation's turns so far: the agent's replies and the requester's messages."""

    @property
    def is_awaiting_reply(self) -> bool:
        """True when the run is a conversation whose agent replied and waits for the requester."""
        return not self.is_finished and bool(self.turns) and self.turns[-1].kind == "agent_replied"

    @property
    def is_finished(self) -> bool:
        """True once run_finished is written; nothing may be appended after it."""
        return self.status != "running"

    @property
    def next_seq(self) -> int:
        """The seq the next appended event of this run must carry."""
        return self.last_seq + 1

    @property
    def open_steps(self) -> list[StepState]:
        """Steps a resumed run still has to settle, in the order they were proposed."""
        return [s for s in self.steps.values() if not s.is_settled]

    @property
    def committed_keys(self) -> frozenset[str]:
        """Idempotency keys of the side effects this run has committed."""
        return frozenset(
            s.step.idempotency_key
            for s in self.steps.values()
            if s.status == "committed" and s.step.idempotency_key is not None
        )


def project_run(events: Iterable[Event]) -> RunState:
    """Fold one run's events, in seq order, into its current state.

    Raises:
        InvalidEvent: the log does not tell a consistent story (no run_started first, a seq
            out of order, an event about a step that was never proposed, a commit under a key
            other than the step's).
    """
    state: RunState | None = None
    for event in events:
        if state is None:
            if not isinstance(event, RunStarted) or event.seq != 0:
                raise InvalidEvent(
                    f"run {event.run_id}: the log begins with {event.kind} at seq {event.seq}, "
                    "not run_started at seq 0"
                )
            state = RunState(run=event.run)
            continue
        if event.run_id != state.run.run_id or event.seq != state.last_seq + 1:
            raise InvalidEvent(
                f"run {state.run.run_id}: expected seq {state.last_seq + 1}, "
                f"got run {event.run_id} seq {event.seq}",
                hint="pass the events of one run, in seq order, as EventStore.read returns them",
            )
        if state.is_finished:
            raise InvalidEvent(
                f"run {state.run.run_id}: {event.kind} at seq {event.seq} follows run_finished"
            )
        state.last_seq = event.seq
        _apply(state, event)
    if state is None:
        raise InvalidEvent("no events to project", hint="check the run id: EventStore.run_ids()")
    return state


def _step(state: RunState, event: Event, step_id: StepId) -> StepState:
    try:
        return state.steps[step_id]
    except KeyError:
        raise InvalidEvent(
            f"run {state.run.run_id} seq {event.seq}: {event.kind} names step {step_id}, "
            "which was never proposed"
        ) from None


def _apply(state: RunState, event: Event) -> None:
    match event:
        case StepProposed(step=step):
            if step.step_id in state.steps:
                raise InvalidEvent(
                    f"run {state.run.run_id} seq {event.seq}: step {step.step_id} is proposed "
                    "a second time",
                    hint="step ids must be unique within a run; do not reuse a seeded IdFactory "
                    "when resuming",
                )
            state.steps[step.step_id] = StepState(step=step)
        case StepDryRunCompleted(step_id=step_id, diff=diff, is_final=is_final):
            entry = _step(state, event, step_id)
            entry.status, entry.dry_run_diff, entry.is_preview_only = "dry_run", diff, is_final
        case StepApproved(step_id=step_id):
            entry = _step(state, event, step_id)
            entry.status, entry.decision = "approved", event
        case StepRejected(step_id=step_id):
            entry = _step(state, event, step_id)
            entry.status, entry.decision = "rejected", event
        case StepCommitted(step_id=step_id, idempotency_key=key):
            entry = _step(state, event, step_id)
            if key != entry.step.idempotency_key:  # a read step has no key, and commits none
                raise InvalidEvent(
                    f"run {state.run.run_id} seq {event.seq}: step {step_id} was proposed with "
                    f"key {entry.step.idempotency_key} but committed with {key}"
                )
            entry.status, entry.result, entry.latency_ms = (
                "committed",
                event.result,
                event.latency_ms,
            )
        case StepFailed(step_id=step_id):
            entry = _step(state, event, step_id)
            entry.status, entry.last_error = "failed", event
        case StepRetried(step_id=step_id, attempt=attempt):
            _step(state, event, step_id).attempts = attempt
        case ArtifactRecorded(artifact=artifact):
            state.artifacts.append(artifact)
        case Verified():
            state.verdicts.append(event)
        case ModelCalled():
            state.model_calls.append(event)
        case RunResumed():
            state.times_resumed += 1
        case AgentReplied(answer=answer):
            state.turns.append(event)
            state.answer = answer
        case UserReplied():
            state.turns.append(event)
        case RunFinished(outcome=outcome, answer=answer):
            state.status, state.answer, state.finished_at = outcome, answer, event.at
        case RunStarted():
            raise InvalidEvent(f"run {state.run.run_id} seq {event.seq}: a second run_started")
