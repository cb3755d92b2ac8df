"""RunRecorder: writes one run's events in order, and picks a run up again after a crash.

The recorder is the only thing that assigns seqs, so the code that drives a run (the executor,
a graph node, a test) states facts -- "this step was approved" -- and never counts. Each call
appends at once: what was said before a crash is in the store after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

from pydantic import JsonValue

from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import InvalidEvent
from agentlab.core.events import (
    AgentReplied,
    Approver,
    ArtifactRecorded,
    DlpDetected,
    Event,
    ExfiltrationBlocked,
    InjectionDetected,
    ModelCalled,
    RunFinished,
    RunOutcome,
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
from agentlab.core.ids import IdFactory, RunId, StepId, derive_idempotency_key
from agentlab.core.records import Artifact, Run, SideEffect, Step
from agentlab.store.projection import RunState, project_run
from agentlab.store.protocol import EventStore


class ResumedRun(NamedTuple):
    """What :meth:`RunRecorder.resume` returns."""

    recorder: RunRecorder
    """Appends the rest of the run, after the ``run_resumed`` it wrote."""
    state: RunState
    """The run as projected before resuming: ``open_steps`` are what is left to do,
    ``committed_keys`` what must not be done again."""


class RunRecorder:
    """Appends the events of one run to a store.

    Build one with :meth:`start` for a new run or :meth:`resume` for an interrupted one.
    """

    def __init__(
        self,
        store: EventStore,
        run: Run,
        *,
        next_seq: int,
        next_position: int,
        clock: Clock,
        ids: IdFactory,
    ) -> None:
        self.store = store
        self.run = run
        self._next_seq = next_seq
        self._next_position = next_position
        self._clock = clock
        self._ids = ids

    @classmethod
    def start(
        cls,
        store: EventStore,
        *,
        task: str,
        actor: str,
        scopes: tuple[str, ...] = (),
        config: str | None = None,
        model: str | None = None,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
    ) -> RunRecorder:
        """Begin a new run: writes ``run_started`` and returns the recorder for the rest."""
        clock = clock or SystemClock()
        ids = ids or IdFactory()
        run = Run(
            run_id=ids.run_id(),
            task=task,
            actor=actor,
            scopes=scopes,
            config=config,
            model=model,
            started_at=clock.now(),
        )
        recorder = cls(store, run, next_seq=0, next_position=0, clock=clock, ids=ids)
        recorder._append(RunStarted, run=run, at=run.started_at)
        return recorder

    @classmethod
    def resume(
        cls,
        store: EventStore,
        run_id: RunId,
        *,
        reason: str = "resumed after interruption",
        clock: Clock | None = None,
        ids: IdFactory | None = None,
    ) -> ResumedRun:
        """Continue a run from what the store holds; writes ``run_resumed``.

        Pass a fresh ``ids`` factory, never the seeded one the run started with: the same seed
        would hand out the step ids already in the log, which the projection refuses.

        Returns:
            The recorder and the run's state before resuming; unpacks as a pair.

        Raises:
            InvalidEvent: the run is unknown or has already finished.
        """
        recorder, state = cls._reopen(store, run_id, clock=clock, ids=ids)
        recorder._append(RunResumed, reason=reason)
        return ResumedRun(recorder, state)

    @classmethod
    def attach(
        cls,
        store: EventStore,
        run_id: RunId,
        *,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
    ) -> RunRecorder:
        """Write to a run that another process drives, e.g. to answer an approval request.

        Unlike :meth:`resume` this writes nothing by itself. If the driving process appends at
        the same moment, one of the two appends is refused with ``DuplicateEvent``; read the
        run again and retry.

        Raises:
            InvalidEvent: the run is unknown or has already finished.
        """
        return cls._reopen(store, run_id, clock=clock, ids=ids)[0]

    @classmethod
    def _reopen(
        cls, store: EventStore, run_id: RunId, *, clock: Clock | None, ids: IdFactory | None
    ) -> tuple[RunRecorder, RunState]:
        events = store.read(run_id)
        if not events:
            raise InvalidEvent(f"{store.url}: no run {run_id}", hint="see store.run_ids()")
        state = project_run(events)
        if state.is_finished:
            raise InvalidEvent(
                f"{store.url}: run {run_id} has finished ({state.status}); nothing more can be "
                "written to it"
            )
        positions = [s.step.position for s in state.steps.values()]
        recorder = cls(
            store,
            state.run,
            next_seq=state.next_seq,
            next_position=max(positions, default=-1) + 1,
            clock=clock or SystemClock(),
            ids=ids or IdFactory(),
        )
        return recorder, state

    @property
    def run_id(self) -> RunId:
        """The id of the run being recorded."""
        return self.run.run_id

    def _append(self, event_type: Callable[..., Event], **fields: object) -> Event:
        fields.setdefault("at", self._clock.now())
        event = event_type(run_id=self.run.run_id, seq=self._next_seq, **fields)
        self.store.append([event])
        self._next_seq += 1
        return event

    def propose(
        self,
        tool: str,
        arguments: dict[str, JsonValue],
        *,
        side_effect: SideEffect | str = "read",
        call_id: str | None = None,
    ) -> Step:
        """Record a proposed tool call; writes get an idempotency key derived from the call.

        Args:
            tool: The tool's name.
            arguments: Its arguments, as proposed.
            side_effect: ``write`` for a call that changes a system.
            call_id: The model's tool-call id, when a model proposed the call.
        """
        side_effect = SideEffect(side_effect)
        position = self._next_position
        key = None
        if side_effect is SideEffect.WRITE:
            key = derive_idempotency_key(self.run.run_id, position, tool, arguments)
        step = Step(
            step_id=self._ids.step_id(),
            run_id=self.run.run_id,
            position=position,
            tool=tool,
            arguments=arguments,
            side_effect=side_effect,
            idempotency_key=key,
            call_id=call_id,
        )
        self._append(StepProposed, step=step)
        self._next_position += 1
        return step

    def dry_run(self, step_id: StepId, diff: JsonValue, *, is_final: bool = False) -> None:
        """Record the diff a dry-run of the step produced.

        Args:
            step_id: The step.
            diff: What a commit would change.
            is_final: No commit follows (a preview, or an autonomy phase without commits);
                the step is settled and a resume leaves it alone.
        """
        self._append(StepDryRunCompleted, step_id=step_id, diff=diff, is_final=is_final)

    def approve(
        self,
        step_id: StepId,
        *,
        approver: str,
        approved_by: Approver,
        reason: str = "",
        edited_arguments: dict[str, JsonValue] | None = None,
    ) -> StepApproved:
        """Record that a human or a policy approved the step's commit; returns the event."""
        return self._append(  # type: ignore[return-value]
            StepApproved,
            step_id=step_id,
            approver=approver,
            approved_by=approved_by,
            reason=reason,
            edited_arguments=edited_arguments,
        )

    def reject(
        self, step_id: StepId, *, approver: str, rejected_by: Approver, reason: str
    ) -> StepRejected:
        """Record that a human or a policy refused the step's commit; returns the event."""
        return self._append(  # type: ignore[return-value]
            StepRejected, step_id=step_id, approver=approver, rejected_by=rejected_by, reason=reason
        )

    def commit(self, step: Step, result: JsonValue, *, latency_ms: float) -> None:
        """Record the step's real execution and its result, under the step's key."""
        self._append(
            StepCommitted,
            step_id=step.step_id,
            idempotency_key=step.idempotency_key,
            result=result,
            latency_ms=latency_ms,
        )

    def fail(self, step_id: StepId, *, error_code: str, message: str, is_retryable: bool) -> None:
        """Record a failed attempt at the step."""
        self._append(
            StepFailed,
            step_id=step_id,
            error_code=error_code,
            message=message,
            is_retryable=is_retryable,
        )

    def retry(self, step_id: StepId, *, attempt: int, backoff_ms: int) -> None:
        """Record that the step is tried again, after ``backoff_ms``."""
        self._append(StepRetried, step_id=step_id, attempt=attempt, backoff_ms=backoff_ms)

    def artifact(
        self,
        kind: str,
        content: JsonValue,
        *,
        step_id: StepId | None = None,
        media_type: str = "application/json",
        uri: str | None = None,
    ) -> Artifact:
        """Record an output or piece of evidence and return it."""
        artifact = Artifact(
            artifact_id=self._ids.artifact_id(),
            run_id=self.run.run_id,
            step_id=step_id,
            kind=kind,
            media_type=media_type,
            content=content,
            uri=uri,
        )
        self._append(ArtifactRecorded, artifact=artifact)
        return artifact

    def model_called(self, **fields: object) -> ModelCalled:
        """Record one answered model request (see :class:`ModelCalled` for the fields)."""
        return self._append(ModelCalled, **fields)  # type: ignore[return-value]

    def detected(
        self,
        event_type: type[InjectionDetected | DlpDetected | ExfiltrationBlocked],
        **fields: object,
    ) -> Event:
        """Record a security layer's finding (see the three event classes for the fields)."""
        return self._append(event_type, **fields)

    def verify(
        self,
        *,
        verifier: str,
        passed: bool,
        findings: tuple[str, ...] = (),
        step_id: StepId | None = None,
    ) -> None:
        """Record a verifier's verdict on a step or on the run."""
        self._append(Verified, verifier=verifier, passed=passed, findings=findings, step_id=step_id)

    def replied(self, answer: str, *, turn: int) -> None:
        """Record that the agent answered in a conversation and waits for the requester."""
        self._append(AgentReplied, answer=answer, turn=turn)

    def user_replied(
        self, message: str, *, turn: int, by: Literal["person", "scripted", "model"] = "person"
    ) -> None:
        """Record the requester's next message in a conversation."""
        self._append(UserReplied, message=message, turn=turn, by=by)

    def finish(self, outcome: RunOutcome, *, answer: str | None = None, reason: str = "") -> None:
        """Record the end of the run; nothing can be appended after it."""
        self._append(RunFinished, outcome=outcome, answer=answer, reason=reason)
