from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentlab.core.clock import TickingClock
from agentlab.core.errors import DuplicateIdempotencyKey, InvalidEvent
from agentlab.core.events import Event, StepProposed
from agentlab.core.ids import IdFactory, RunId
from agentlab.store import MemoryEventStore, RunRecorder

T0 = datetime(2026, 2, 1, tzinfo=UTC)
ORDER = {"supplier_id": "SUP-1", "items": [{"sku": "TONER-5", "qty": 5}]}


def record(seed: int) -> list[Event]:
    """A scripted run into a fresh store, with a fixed clock and seeded ids."""
    store = MemoryEventStore()
    rec = RunRecorder.start(
        store, task="order toner", actor="alice", clock=TickingClock(T0), ids=IdFactory.seeded(seed)
    )
    lookup = rec.propose("find_supplier", {"query": "toner"})
    rec.commit(lookup, {"supplier_id": "SUP-1"}, latency_ms=3.0)
    order = rec.propose("create_purchase_order", ORDER, side_effect="write")
    rec.dry_run(order.step_id, {"purchase_orders": {"+": 1}})
    rec.approve(order.step_id, approver="policy:small", approved_by="policy")
    rec.fail(order.step_id, error_code="TIMEOUT", message="erp slow", is_retryable=True)
    rec.retry(order.step_id, attempt=2, backoff_ms=50)
    rec.commit(order, {"po_id": "PO-1"}, latency_ms=40.0)
    rec.artifact("evidence", {"po_id": "PO-1"}, step_id=order.step_id)
    rec.verify(verifier="rules", passed=True, step_id=order.step_id)
    rec.finish("succeeded", answer="PO-1")
    return store.read(rec.run_id)


def test_the_same_seed_and_clock_record_the_same_run() -> None:
    first, second = record(seed=5), record(seed=5)
    assert len(first) == 12
    assert first == second
    assert [e.model_dump_json() for e in first] == [e.model_dump_json() for e in second]


def test_another_seed_records_other_ids() -> None:
    first, other = record(seed=5), record(seed=6)
    assert first[0].run_id != other[0].run_id
    assert [e.kind for e in first] == [e.kind for e in other]


def test_resuming_an_unknown_run_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="no run run_nowhere"):
        RunRecorder.resume(MemoryEventStore(), RunId("run_nowhere"))


def test_a_resumed_run_continues_the_positions(clock: TickingClock, ids: IdFactory) -> None:
    store = MemoryEventStore()
    rec = RunRecorder.start(store, task="t", actor="alice", clock=clock, ids=ids)
    rec.propose("find_supplier", {"query": "toner"})
    before = rec.propose("create_purchase_order", ORDER, side_effect="write")

    resumed, state = RunRecorder.resume(store, rec.run_id, clock=clock, ids=IdFactory.seeded(99))
    after = resumed.propose("create_purchase_order", ORDER, side_effect="write")

    assert max(s.step.position for s in state.steps.values()) == before.position
    assert after.position == before.position + 1
    assert after.idempotency_key not in {before.idempotency_key, None}
    events = store.read(rec.run_id)
    assert [e.kind for e in events[-2:]] == ["run_resumed", "step_proposed"]
    assert [e.seq for e in events] == list(range(len(events)))


def test_a_run_resumed_before_any_step_starts_at_position_0(clock: TickingClock) -> None:
    store = MemoryEventStore()
    rec = RunRecorder.start(store, task="t", actor="alice", clock=clock)
    resumed, _ = RunRecorder.resume(store, rec.run_id, clock=clock)
    assert resumed.propose("find_supplier", {}).position == 0


def test_a_refused_append_does_not_use_up_a_seq(clock: TickingClock, ids: IdFactory) -> None:
    store = MemoryEventStore()
    rec = RunRecorder.start(store, task="t", actor="alice", clock=clock, ids=ids)
    mail = rec.propose("send_mail", {"to": "bob@example.co.jp"}, side_effect="write")
    rec.commit(mail, {"message_id": "m-1"}, latency_ms=1.0)
    with pytest.raises(DuplicateIdempotencyKey):
        rec.commit(mail, {"message_id": "m-2"}, latency_ms=1.0)
    rec.finish("succeeded")
    events = store.read(rec.run_id)
    assert [e.kind for e in events] == [
        "run_started",
        "step_proposed",
        "step_committed",
        "run_finished",
    ]
    assert [e.seq for e in events] == [0, 1, 2, 3]


def test_a_proposed_write_carries_its_key_in_the_log(clock: TickingClock, ids: IdFactory) -> None:
    store = MemoryEventStore()
    rec = RunRecorder.start(store, task="t", actor="alice", clock=clock, ids=ids)
    step = rec.propose("send_mail", {"to": "bob"}, side_effect="write")
    proposed = store.read(rec.run_id)[-1]
    assert isinstance(proposed, StepProposed)
    assert proposed.step == step
    assert step.idempotency_key is not None


def test_attach_writes_to_a_running_run_without_a_resume_event(
    clock: TickingClock, ids: IdFactory
) -> None:
    store = MemoryEventStore()
    rec = RunRecorder.start(store, task="t", actor="alice", clock=clock, ids=ids)
    order = rec.propose("create_purchase_order", ORDER, side_effect="write")
    rec.dry_run(order.step_id, {"purchase_orders": {"+": 1}})

    reviewer = RunRecorder.attach(store, rec.run_id, clock=clock, ids=IdFactory.seeded(7))
    reviewer.approve(order.step_id, approver="bob", approved_by="human")

    kinds = [e.kind for e in store.read(rec.run_id)]
    assert kinds[-1] == "step_approved"
    assert "run_resumed" not in kinds


def test_attach_to_a_finished_run_is_refused(clock: TickingClock) -> None:
    store = MemoryEventStore()
    rec = RunRecorder.start(store, task="t", actor="alice", clock=clock)
    rec.finish("succeeded")
    with pytest.raises(InvalidEvent, match="has finished"):
        RunRecorder.attach(store, rec.run_id)


def test_a_final_dry_run_settles_the_step_and_a_plain_one_leaves_it_open(
    clock: TickingClock, ids: IdFactory
) -> None:
    store = MemoryEventStore()
    rec = RunRecorder.start(store, task="t", actor="alice", clock=clock, ids=ids)
    preview = rec.propose("create_purchase_order", ORDER, side_effect="write")
    rec.dry_run(preview.step_id, {"+": 1}, is_final=True)
    waiting = rec.propose("create_purchase_order", {**ORDER, "note": "2"}, side_effect="write")
    rec.dry_run(waiting.step_id, {"+": 1})

    _, state = RunRecorder.resume(store, rec.run_id, clock=clock, ids=IdFactory.seeded(8))

    assert [s.step.step_id for s in state.open_steps] == [waiting.step_id]
    assert state.steps[preview.step_id].is_preview_only
