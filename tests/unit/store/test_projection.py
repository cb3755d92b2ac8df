from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from agentlab.core.clock import TickingClock
from agentlab.core.errors import InvalidEvent
from agentlab.core.events import (
    Event,
    RunFinished,
    RunStarted,
    StepApproved,
    StepCommitted,
    StepFailed,
    StepProposed,
    StepRejected,
    StepRetried,
)
from agentlab.core.ids import RunId
from agentlab.core.records import Run, Step
from agentlab.store import RunState, project_run

KEY = "idk_0123456789abcdef"


def started(run_id: str, at: datetime) -> RunStarted:
    run = Run(run_id=RunId(run_id), task="order toner", actor="alice", started_at=at)
    return RunStarted(run_id=RunId(run_id), seq=0, at=at, run=run)


class Log:
    """A hand-built log of one run; ``add`` gives each event the next seq."""

    def __init__(self, clock: TickingClock, run_id: str = "run_1") -> None:
        self.clock = clock
        self.run_id = run_id
        self.events: list[Event] = [started(run_id, clock.now())]

    def add(self, event_type: Callable[..., Event], **fields: object) -> Log:
        seq = len(self.events)
        self.events.append(event_type(run_id=self.run_id, seq=seq, at=self.clock.now(), **fields))
        return self

    def propose(self, step_id: str, *, key: str | None = KEY) -> Log:
        step = Step(
            step_id=step_id,
            run_id=RunId(self.run_id),
            position=sum(isinstance(e, StepProposed) for e in self.events),
            tool="create_purchase_order",
            arguments={"qty": 5},
            side_effect="write" if key else "read",
            idempotency_key=key,
        )
        return self.add(StepProposed, step=step)

    def fail(self, step_id: str, *, is_retryable: bool) -> Log:
        return self.add(
            StepFailed,
            step_id=step_id,
            error_code="TIMEOUT",
            message="slow",
            is_retryable=is_retryable,
        )

    def project(self) -> RunState:
        return project_run(self.events)


def test_a_rejected_step_is_settled_and_reworked(clock: TickingClock) -> None:
    log = Log(clock).propose("step_1")
    log.add(StepRejected, step_id="step_1", approver="bob", rejected_by="human", reason="no")
    entry = log.project().steps["step_1"]
    assert (entry.status, entry.is_settled, entry.was_reworked) == ("rejected", True, True)
    assert log.project().open_steps == []


def test_an_approval_with_edited_arguments_counts_as_rework(clock: TickingClock) -> None:
    log = Log(clock).propose("step_1").propose("step_2", key=KEY + "2")
    log.add(StepApproved, step_id="step_1", approver="bob", approved_by="human")
    log.add(
        StepApproved,
        step_id="step_2",
        approver="bob",
        approved_by="human",
        edited_arguments={"qty": 4},
    )
    state = log.project()
    assert not state.steps["step_1"].was_reworked
    assert state.steps["step_2"].was_reworked
    assert [s.step.step_id for s in state.open_steps] == ["step_1", "step_2"]


def test_a_retryable_failure_leaves_the_step_open(clock: TickingClock) -> None:
    state = Log(clock).propose("step_1").fail("step_1", is_retryable=True).project()
    entry = state.steps["step_1"]
    assert entry.status == "failed"
    assert entry.last_error is not None
    assert not entry.is_settled
    assert state.open_steps == [entry]


def test_a_final_failure_settles_the_step(clock: TickingClock) -> None:
    state = Log(clock).propose("step_1").fail("step_1", is_retryable=False).project()
    assert state.steps["step_1"].is_settled
    assert state.open_steps == []
    assert state.committed_keys == frozenset()


def test_a_retry_counts_the_attempt(clock: TickingClock) -> None:
    log = Log(clock).propose("step_1")
    assert log.project().steps["step_1"].attempts == 1
    log.fail("step_1", is_retryable=True)
    log.add(StepRetried, step_id="step_1", attempt=2, backoff_ms=100)
    log.fail("step_1", is_retryable=True)
    log.add(StepRetried, step_id="step_1", attempt=3, backoff_ms=200)
    log.add(StepCommitted, step_id="step_1", idempotency_key=KEY, result={"ok": 1}, latency_ms=1)
    state = log.project()
    assert state.steps["step_1"].attempts == 3
    assert state.steps["step_1"].status == "committed"
    assert state.committed_keys == {KEY}


def test_an_event_about_an_unknown_step_is_refused(clock: TickingClock) -> None:
    log = Log(clock).propose("step_1")
    log.add(StepApproved, step_id="step_9", approver="bob", approved_by="human")
    with pytest.raises(InvalidEvent, match=r"run run_1 seq 2: step_approved names step step_9"):
        log.project()


def test_a_commit_under_another_key_is_refused(clock: TickingClock) -> None:
    other = "idk_fedcba9876543210"
    log = Log(clock).propose("step_1")
    log.add(StepCommitted, step_id="step_1", idempotency_key=other, result=None, latency_ms=1)
    with pytest.raises(InvalidEvent, match=f"step step_1 was proposed with key {KEY} .*{other}"):
        log.project()


def test_the_log_must_begin_with_run_started(clock: TickingClock) -> None:
    events = Log(clock).propose("step_1").events
    with pytest.raises(InvalidEvent, match="begins with step_proposed at seq 1"):
        project_run(events[1:])


def test_events_out_of_order_are_refused(clock: TickingClock) -> None:
    first, second, third = Log(clock).propose("step_1").propose("step_2", key=None).events
    with pytest.raises(InvalidEvent, match="expected seq 1, got run run_1 seq 2"):
        project_run([first, third, second])


def test_events_of_two_runs_are_not_mixed(clock: TickingClock) -> None:
    run_1 = Log(clock, "run_1").propose("step_1").events
    run_2 = Log(clock, "run_2").propose("step_2").events
    with pytest.raises(InvalidEvent, match="got run run_2 seq 1"):
        project_run([run_1[0], run_2[1]])


def test_a_second_run_started_is_refused(clock: TickingClock) -> None:
    log = Log(clock)
    again = log.events[0].model_copy(update={"seq": 1})
    with pytest.raises(InvalidEvent, match="seq 1: a second run_started"):
        project_run([*log.events, again])


def test_an_empty_log_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="no events"):
        project_run([])


def test_a_step_id_proposed_twice_is_refused(clock: TickingClock) -> None:
    # Otherwise the second proposal silently replaces the first, and its commit drops out of
    # committed_keys (e.g. a run resumed with the IdFactory seed it was started with).
    log = Log(clock).propose("step_1")
    log.add(StepCommitted, step_id="step_1", idempotency_key=KEY, result=None, latency_ms=1)
    log.propose("step_1", key=None)
    with pytest.raises(InvalidEvent, match="step_1"):
        log.project()


def test_nothing_may_follow_run_finished(clock: TickingClock) -> None:
    log = Log(clock).add(RunFinished, outcome="succeeded")
    log.propose("step_1")
    with pytest.raises(InvalidEvent, match="step_proposed at seq 2 follows run_finished"):
        log.project()


def test_a_read_step_commits_no_key(clock: TickingClock) -> None:
    log = Log(clock).propose("step_1", key=None)
    log.add(StepCommitted, step_id="step_1", idempotency_key=KEY, result=None, latency_ms=1)
    with pytest.raises(InvalidEvent, match="proposed with key None but committed with"):
        log.project()
