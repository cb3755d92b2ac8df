from __future__ import annotations

import json

from agentlab.core.clock import TickingClock
from agentlab.core.events import (
    EVENT_KINDS,
    AgentReplied,
    ArtifactRecorded,
    DlpDetected,
    Event,
    ExfiltrationBlocked,
    InjectionDetected,
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
from agentlab.core.ids import IdFactory, RunId
from agentlab.core.records import Artifact, Run, Step
from agentlab.store.timeline import DETAIL_MAX_CHARS, describe, timeline

KEY = "idk_0123456789abcdef"


def one_of_each_kind(clock: TickingClock, ids: IdFactory, *, text: str = "ok") -> list[Event]:
    """One event of each kind; ``text`` goes into every free-text field."""
    run_id = ids.run_id()
    step_id = ids.step_id()
    run = Run(run_id=run_id, task=text, actor="alice", started_at=clock.now())
    step = Step(
        step_id=step_id,
        run_id=run_id,
        position=0,
        tool="create_purchase_order",
        arguments={"qty": 5},
        side_effect="write",
        idempotency_key=KEY,
    )
    artifact = Artifact(
        artifact_id=ids.artifact_id(), run_id=run_id, step_id=step_id, kind="evidence"
    )
    on_step = {"step_id": step_id}
    specs: list[tuple[type[Event], dict[str, object]]] = [
        (RunStarted, {"run": run}),
        (StepProposed, {"step": step}),
        (StepDryRunCompleted, on_step | {"diff": {"+": 1}}),
        (StepRejected, on_step | {"approver": "bob", "rejected_by": "human", "reason": text}),
        (StepApproved, on_step | {"approver": "bob", "approved_by": "human"}),
        (StepFailed, on_step | {"error_code": "TIMEOUT", "message": text, "is_retryable": True}),
        (StepRetried, on_step | {"attempt": 2, "backoff_ms": 50}),
        (StepCommitted, on_step | {"idempotency_key": KEY, "result": {"po": 1}, "latency_ms": 4}),
        (ArtifactRecorded, {"artifact": artifact}),
        (
            ModelCalled,
            {
                "node": "agent",
                "model": "sim-large",
                "is_simulated": True,
                "prompt_tokens": 812,
                "completion_tokens": 40,
                "cost_usd": 0.0021,
                "latency_ms": 310,
                "waited_ms": 1500,
                "tool_calls": ("find_supplier",),
            },
        ),
        (Verified, {"verifier": "rules", "passed": False, "findings": (text,)}),
        (
            InjectionDetected,
            on_step
            | {"source": "tool:search_kb", "score": 0.9, "action": "quarantined", "excerpt": text},
        ),
        (
            DlpDetected,
            on_step
            | {"place": "tool_results", "kinds": ("card_number",), "count": 1, "action": "masked"},
        ),
        (
            ExfiltrationBlocked,
            on_step
            | {"place": "tool_arguments", "targets": ("mailto:x@evil.example",), "reason": text},
        ),
        (RunResumed, {"reason": text}),
        (AgentReplied, {"answer": "Which ticket do you mean?", "turn": 1}),
        (UserReplied, {"message": "TCK-000006", "turn": 2, "by": "scripted"}),
        (RunFinished, {"outcome": "succeeded", "answer": text}),
    ]
    return [
        cls(run_id=run_id, seq=seq, at=clock.now(), **fields)
        for seq, (cls, fields) in enumerate(specs)
    ]


def test_every_event_kind_is_described(clock: TickingClock, ids: IdFactory) -> None:
    events = one_of_each_kind(clock, ids)
    assert {e.kind for e in events} == EVENT_KINDS
    rows = timeline(events)
    assert [(r.seq, r.at, r.kind) for r in rows] == [(e.seq, e.at, e.kind) for e in events]
    assert all(isinstance(r.detail, str) and r.detail for r in rows)


def test_rows_name_the_step_of_step_events(clock: TickingClock, ids: IdFactory) -> None:
    events = one_of_each_kind(clock, ids)
    step_id = events[1].step.step_id  # type: ignore[union-attr]
    run_level = {
        "run_started", "model_called", "verified", "run_resumed", "run_finished",
        "agent_replied", "user_replied",
    }  # fmt: skip
    for row in timeline(events):
        assert row.step_id == (None if row.kind in run_level else step_id), row.kind


def test_long_values_are_cut_to_detail_max_chars(clock: TickingClock, ids: IdFactory) -> None:
    run_id = RunId("run_1")
    arguments = {f"line_{i}": "x" * 20 for i in range(20)}
    step = Step(
        step_id="step_1",
        run_id=run_id,
        position=0,
        tool="bulk_update",
        arguments=arguments,
        side_effect="read",
    )
    detail = describe(StepProposed(run_id=run_id, seq=1, at=clock.now(), step=step))
    shown = detail.removeprefix("bulk_update(").removesuffix(") read")
    assert len(json.dumps(arguments)) > DETAIL_MAX_CHARS
    assert len(shown) == DETAIL_MAX_CHARS
    assert shown.endswith("…")
    assert json.dumps(arguments, sort_keys=True).startswith(shown[:-1])


def test_short_values_are_shown_whole(clock: TickingClock) -> None:
    run_id = RunId("run_1")
    event = StepDryRunCompleted(
        run_id=run_id, seq=1, at=clock.now(), step_id="step_1", diff={"po": [1, 2]}
    )
    assert describe(event).endswith(json.dumps({"po": [1, 2]}))


def test_each_event_is_described_on_one_line(clock: TickingClock, ids: IdFactory) -> None:
    events = one_of_each_kind(clock, ids, text="first line\nsecond line")
    multi_line = [r.kind for r in timeline(events) if "\n" in r.detail]
    assert multi_line == []


def test_a_final_dry_run_says_nothing_was_committed(clock: TickingClock, ids: IdFactory) -> None:
    run_id, step_id = ids.run_id(), ids.step_id()

    def dry_run(*, is_final: bool) -> str:
        event = StepDryRunCompleted(
            run_id=run_id, seq=2, at=clock.now(), step_id=step_id, diff={"+": 1}, is_final=is_final
        )
        return describe(event)

    assert dry_run(is_final=True).startswith("preview only, nothing committed: would change")
    assert dry_run(is_final=False).startswith("would change")
