"""Approvals: who says yes to a commit, and the queue where a human's answer waits.

A policy rule may approve a commit by itself (e.g. a purchase order up to 5,000 USD). Other
commits need a person: the executor asks its :class:`Reviewer`; when the reviewer has no
answer yet, the step waits in the store with its dry-run recorded, and
:class:`ApprovalQueue` -- used by a notebook or ``agentlab approvals`` -- lists it and
records the answer. Executor.continue_step then carries the step on from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import JsonValue

from agentlab.core.clock import Clock
from agentlab.core.errors import InvalidEvent
from agentlab.core.ids import RunId, StepId
from agentlab.store import EventStore, RunRecorder, RunState, project_run


@dataclass(frozen=True)
class ApprovalRequest:
    """A commit waiting for a human: what would change, for whom, under which rule."""

    run_id: RunId
    step_id: StepId
    tool: str
    arguments: dict[str, JsonValue]
    preview: JsonValue
    """The dry-run's result and diff: what the commit would do."""
    actor: str
    rule: str = "human_approval"


@dataclass(frozen=True)
class ReviewDecision:
    """A reviewer's answer: approve (maybe with edited arguments) or reject, with a reason."""

    is_approved: bool
    reviewer: str
    reason: str = ""
    edited_arguments: dict[str, JsonValue] | None = None
    """Arguments the reviewer changed before approving; counts as rework."""

    @classmethod
    def approve(
        cls,
        reviewer: str,
        *,
        reason: str = "",
        edited_arguments: dict[str, JsonValue] | None = None,
    ) -> ReviewDecision:
        """An approval, optionally with the reviewer's edits."""
        return cls(True, reviewer, reason, edited_arguments)

    @classmethod
    def reject(cls, reviewer: str, reason: str) -> ReviewDecision:
        """A rejection; the reason goes back to the model."""
        return cls(False, reviewer, reason)


class Reviewer(Protocol):
    """Answers approval requests; returns None when the answer will come later."""

    async def review(self, request: ApprovalRequest) -> ReviewDecision | None:
        """Approve, reject, or None to leave the request waiting in the queue."""
        ...


class QueueReviewer:
    """Leaves every request waiting: a person answers later through :class:`ApprovalQueue`."""

    async def review(self, request: ApprovalRequest) -> ReviewDecision | None:
        """Always None: nobody answers in-line."""
        return None


class ScriptedReviewer:
    """Answers at once with a function of the request: the suites' scripted reviewer.

    Args:
        decide: Returns the decision for a request (None to leave it waiting).
    """

    def __init__(self, decide: Callable[[ApprovalRequest], ReviewDecision | None]) -> None:
        self._decide = decide
        self.seen: list[ApprovalRequest] = []
        """Every request this reviewer was asked, in order."""

    async def review(self, request: ApprovalRequest) -> ReviewDecision | None:
        """The scripted decision."""
        self.seen.append(request)
        return self._decide(request)


@dataclass(frozen=True)
class PendingApproval:
    """A step whose dry-run is done and which has neither approval nor rejection."""

    run_id: RunId
    step_id: StepId
    actor: str
    tool: str
    arguments: dict[str, JsonValue]
    preview: JsonValue


class ApprovalQueue:
    """The pending approvals of a store, and the way a person answers them.

    Answers are events in the run (``step_approved`` / ``step_rejected`` by ``human``); the
    process driving the run reads them when it continues the step.
    """

    def __init__(self, store: EventStore, *, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock

    def pending(self) -> list[PendingApproval]:
        """Every step waiting for a decision, oldest run first."""
        return [
            pending
            for run_id in self._store.run_ids()
            for pending in _waiting(project_run(self._store.read(run_id)))
        ]

    def approve(
        self,
        run_id: RunId,
        step_id: StepId,
        *,
        reviewer: str,
        reason: str = "",
        edited_arguments: dict[str, JsonValue] | None = None,
    ) -> None:
        """Record a person's approval of a waiting step.

        Raises:
            InvalidEvent: the step is not waiting for a decision.
        """
        self._recorder_for(run_id, step_id).approve(
            step_id,
            approver=reviewer,
            approved_by="human",
            reason=reason,
            edited_arguments=edited_arguments,
        )

    def reject(self, run_id: RunId, step_id: StepId, *, reviewer: str, reason: str) -> None:
        """Record a person's rejection of a waiting step.

        Raises:
            InvalidEvent: the step is not waiting for a decision.
        """
        self._recorder_for(run_id, step_id).reject(
            step_id, approver=reviewer, rejected_by="human", reason=reason
        )

    def _recorder_for(self, run_id: RunId, step_id: StepId) -> RunRecorder:
        events = self._store.read(run_id)
        if not events or step_id not in {p.step_id for p in _waiting(project_run(events))}:
            raise InvalidEvent(
                f"{self._store.url}: step {step_id} of run {run_id} is not waiting for approval",
                hint="list the waiting steps with `agentlab approvals list`",
            )
        return RunRecorder.attach(self._store, run_id, clock=self._clock)


def _waiting(state: RunState) -> list[PendingApproval]:
    if state.is_finished:
        return []
    return [
        PendingApproval(
            run_id=state.run.run_id,
            step_id=step.step.step_id,
            actor=state.run.actor,
            tool=step.step.tool,
            arguments=step.step.arguments,
            preview=step.dry_run_diff,
        )
        for step in state.steps.values()
        if step.status == "dry_run" and not step.is_preview_only
    ]
