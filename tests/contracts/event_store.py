"""The EventStore contract: every backend passes every test here.

Subclass :class:`EventStoreContract` with three fixtures:

* ``open_store`` -- a callable that opens a new handle on the same backing data each time it is
  called (so a test can close a store and reopen it, as a restarted process would);
* ``write_raw`` -- ``write_raw(run_id, seq, kind, body)`` puts a row straight into the backing
  data, bypassing every check, to play a corrupted or future-version row;
* ``set_schema_version`` -- ``set_schema_version(n)`` records schema version ``n``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentlab.core.clock import TickingClock
from agentlab.core.errors import (
    DuplicateEvent,
    DuplicateIdempotencyKey,
    InvalidEvent,
    SchemaTooNew,
    StoreClosed,
)
from agentlab.core.events import RunFinished, RunStarted, StepCommitted, StepProposed
from agentlab.core.ids import IdFactory, RunId
from agentlab.core.records import Run, Step
from agentlab.store import EventStore, RunRecorder, project_run

OpenStore = Callable[[], EventStore]
WriteRaw = Callable[[str, int, str, str], None]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def started(run_id: str, *, seq: int = 0) -> RunStarted:
    run = Run(run_id=RunId(run_id), task="reset my password", actor="alice", started_at=T0)
    return RunStarted(run_id=RunId(run_id), seq=seq, at=T0, run=run)


def write_step(run_id: str, seq: int, key: str, *, step_id: str = "step_1") -> StepProposed:
    step = Step(
        step_id=step_id,
        run_id=RunId(run_id),
        position=0,
        tool="send_mail",
        arguments={"to": "bob@example.co.jp"},
        side_effect="write",
        idempotency_key=key,
    )
    return StepProposed(run_id=RunId(run_id), seq=seq, at=T0 + timedelta(seconds=seq), step=step)


def committed(run_id: str, seq: int, key: str, *, step_id: str = "step_1") -> StepCommitted:
    return StepCommitted(
        run_id=RunId(run_id),
        seq=seq,
        at=T0 + timedelta(seconds=seq),
        step_id=step_id,
        idempotency_key=key,
        result={"message_id": f"m-{run_id}-{seq}"},
        latency_ms=12.5,
    )


def finished(run_id: str, seq: int) -> RunFinished:
    return RunFinished(run_id=RunId(run_id), seq=seq, at=T0, outcome="succeeded", answer="done")


KEY = "idk_0123456789abcdef"


def race(
    writers: int, attempt: Callable[[int], object], *, loses_with: type[Exception]
) -> list[str]:
    """Start ``writers`` threads at once on ``attempt(i)``; "won" or "lost" for each."""
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def run(index: int) -> None:
        barrier.wait()
        try:
            attempt(index)
            outcome = "won"
        except loses_with:
            outcome = "lost"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def record_governed_run(store: EventStore, seed: int = 7) -> RunRecorder:
    """A run that reads, proposes a write, dry-runs, is approved, commits, verifies, finishes."""
    rec = RunRecorder.start(
        store,
        task="order 5 toner cartridges from SUP-000123",
        actor="alice",
        scopes=("erp:write",),
        config="single",
        model="sim-large",
        clock=TickingClock(T0),
        ids=IdFactory.seeded(seed),
    )
    lookup = rec.propose("find_supplier", {"query": "toner"})
    rec.commit(lookup, {"supplier_id": "SUP-000123"}, latency_ms=3.0)
    order = rec.propose(
        "create_purchase_order",
        {"supplier_id": "SUP-000123", "items": [{"sku": "TONER-5", "qty": 5}]},
        side_effect="write",
    )
    rec.dry_run(order.step_id, {"purchase_orders": {"+": ["PO-1"]}})
    rec.approve(order.step_id, approver="policy:small-orders", approved_by="policy")
    rec.commit(order, {"po_id": "PO-1"}, latency_ms=40.0)
    rec.artifact("evidence", {"po_id": "PO-1"}, step_id=order.step_id)
    rec.verify(verifier="rules", passed=True, step_id=order.step_id)
    rec.finish("succeeded", answer="Ordered: PO-1")
    return rec


class EventStoreContract:
    """Behaviour every EventStore backend must show."""

    @pytest.fixture
    def store(self, open_store: OpenStore) -> Iterator[EventStore]:
        handle = open_store()
        yield handle
        handle.close()

    # --- append and read back -------------------------------------------------------------

    def test_events_read_back_equal_to_what_was_appended(self, store: EventStore) -> None:
        rec = record_governed_run(store)
        events = store.read(rec.run_id)
        assert [e.seq for e in events] == list(range(10))
        assert events[0] == RunStarted(run_id=rec.run_id, seq=0, at=T0, run=rec.run)
        assert [e.kind for e in events][-3:] == ["artifact_recorded", "verified", "run_finished"]

    def test_read_after_seq_returns_only_later_events(self, store: EventStore) -> None:
        rec = record_governed_run(store)
        assert [e.seq for e in store.read(rec.run_id, after_seq=6)] == [7, 8, 9]
        assert store.read(rec.run_id, after_seq=9) == []
        assert store.read(RunId("run_unknown")) == []

    def test_runs_are_listed_in_the_order_they_started(self, store: EventStore) -> None:
        for run_id in ["run_c", "run_a", "run_b"]:
            store.append([started(run_id)])
        store.append([write_step("run_a", 1, KEY)])
        assert store.run_ids() == ["run_c", "run_a", "run_b"]

    def test_batches_of_several_runs_keep_each_runs_order(self, store: EventStore) -> None:
        store.append([started("run_a"), started("run_b"), write_step("run_b", 1, KEY)])
        store.append([write_step("run_a", 1, KEY + "a", step_id="step_2"), finished("run_b", 2)])
        assert [e.kind for e in store.read(RunId("run_b"))] == [
            "run_started",
            "step_proposed",
            "run_finished",
        ]
        assert [e.seq for e in store.read(RunId("run_a"))] == [0, 1]

    def test_an_empty_batch_writes_nothing(self, store: EventStore) -> None:
        store.append([])
        assert store.run_ids() == []

    # --- projections ---------------------------------------------------------------------

    def test_projection_tells_the_runs_story(self, store: EventStore) -> None:
        rec = record_governed_run(store)
        state = project_run(store.read(rec.run_id))
        assert state.status == "succeeded"
        assert state.answer == "Ordered: PO-1"
        lookup, order = state.steps.values()
        assert lookup.status == "committed"
        assert lookup.step.idempotency_key is None
        assert order.status == "committed"
        assert order.result == {"po_id": "PO-1"}
        assert order.dry_run_diff == {"purchase_orders": {"+": ["PO-1"]}}
        assert state.committed_keys == {order.step.idempotency_key}
        assert [a.kind for a in state.artifacts] == ["evidence"]
        assert state.verdicts[0].passed
        assert state.open_steps == []

    # --- append rules ----------------------------------------------------------------------

    def test_duplicate_seq_is_refused_and_nothing_of_the_batch_is_written(
        self, store: EventStore
    ) -> None:
        store.append([started("run_1")])
        with pytest.raises(DuplicateEvent, match="run_1 already has an event at seq 0"):
            store.append([started("run_2"), started("run_1")])
        assert store.run_ids() == ["run_1"]

    def test_a_gap_in_seqs_is_refused(self, store: EventStore) -> None:
        store.append([started("run_1")])
        with pytest.raises(InvalidEvent, match="seq 2 leaves a gap; expected 1"):
            store.append([write_step("run_1", 2, KEY)])
        assert len(store.read(RunId("run_1"))) == 1

    def test_a_run_must_begin_with_run_started(self, store: EventStore) -> None:
        with pytest.raises(InvalidEvent, match="seq 0 must be run_started"):
            store.append([finished("run_1", 0)])
        with pytest.raises(InvalidEvent, match="seq 0 must be run_started"):
            store.append([started("run_1"), started("run_1", seq=1)])
        assert store.run_ids() == []

    def test_nothing_is_appended_after_run_finished(self, store: EventStore) -> None:
        store.append([started("run_1"), finished("run_1", 1)])
        with pytest.raises(InvalidEvent, match="run_1 has finished"):
            store.append([write_step("run_1", 2, KEY)])

    def test_an_idempotency_key_is_committed_once_across_runs(self, store: EventStore) -> None:
        store.append([started("run_1"), write_step("run_1", 1, KEY), committed("run_1", 2, KEY)])
        with pytest.raises(DuplicateIdempotencyKey, match=f"{KEY} is committed already"):
            store.append(
                [started("run_2"), write_step("run_2", 1, KEY), committed("run_2", 2, KEY)]
            )
        assert store.run_ids() == ["run_1"]
        commit = store.find_commit(KEY)
        assert commit is not None
        assert commit.run_id == "run_1"
        assert commit.result == {"message_id": "m-run_1-2"}

    def test_an_idempotency_key_twice_in_one_batch_is_refused(self, store: EventStore) -> None:
        with pytest.raises(DuplicateIdempotencyKey):
            store.append(
                [
                    started("run_1"),
                    write_step("run_1", 1, KEY),
                    committed("run_1", 2, KEY),
                    committed("run_1", 3, KEY),
                ]
            )
        assert store.find_commit(KEY) is None
        assert store.run_ids() == []

    def test_find_commit_of_an_unknown_key_is_none(self, store: EventStore) -> None:
        assert store.find_commit("idk_never_committed_0") is None

    # --- resume ------------------------------------------------------------------------------

    def test_an_interrupted_run_resumes_from_what_was_written(self, open_store: OpenStore) -> None:
        first = open_store()
        rec = RunRecorder.start(first, task="t", actor="alice", clock=TickingClock(T0))
        order = rec.propose(
            "create_purchase_order", {"supplier_id": "SUP-000001"}, side_effect="write"
        )
        rec.dry_run(order.step_id, {"purchase_orders": {"+": 1}})
        rec.approve(order.step_id, approver="bob", approved_by="human")
        first.close()  # the process dies here: approved, never committed

        second = open_store()
        try:
            resumed, state = RunRecorder.resume(second, rec.run_id, clock=TickingClock(T0))
            assert [s.step.step_id for s in state.open_steps] == [order.step_id]
            assert state.open_steps[0].status == "approved"
            assert second.find_commit(order.idempotency_key or "") is None
            resumed.commit(order, {"po_id": "PO-9"}, latency_ms=5.0)
            resumed.finish("succeeded")
            final = project_run(second.read(rec.run_id))
        finally:
            second.close()
        assert final.status == "succeeded"
        assert final.times_resumed == 1
        assert final.committed_keys == {order.idempotency_key}

    def test_a_resumed_run_cannot_repeat_a_committed_side_effect(
        self, open_store: OpenStore
    ) -> None:
        first = open_store()
        rec = RunRecorder.start(first, task="t", actor="alice", clock=TickingClock(T0))
        mail = rec.propose("send_mail", {"to": "bob@example.co.jp"}, side_effect="write")
        rec.commit(mail, {"message_id": "m-1"}, latency_ms=5.0)
        first.close()  # the process dies after the commit, before the run finished

        second = open_store()
        try:
            resumed, state = RunRecorder.resume(second, rec.run_id)
            assert state.open_steps == []
            assert mail.idempotency_key in state.committed_keys
            with pytest.raises(DuplicateIdempotencyKey):
                resumed.commit(mail, {"message_id": "m-2"}, latency_ms=5.0)
            recorded = second.find_commit(mail.idempotency_key or "")
            assert recorded is not None
            assert recorded.result == {"message_id": "m-1"}
        finally:
            second.close()

    def test_a_finished_run_cannot_be_resumed(self, store: EventStore) -> None:
        rec = record_governed_run(store)
        with pytest.raises(InvalidEvent, match="has finished"):
            RunRecorder.resume(store, rec.run_id)

    # --- concurrency ------------------------------------------------------------------------

    def test_concurrent_appends_to_many_runs_lose_and_duplicate_nothing(
        self, store: EventStore
    ) -> None:
        threads, events_per_run = 8, 40

        def work(index: int) -> None:
            run_id = f"run_{index}"
            store.append([started(run_id)])
            for seq in range(1, events_per_run):
                store.append(
                    [write_step(run_id, seq, f"{KEY}_{index}_{seq}", step_id=f"step_{seq}")]
                )

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(store.run_ids()) == sorted(f"run_{i}" for i in range(threads))
        for i in range(threads):
            assert [e.seq for e in store.read(RunId(f"run_{i}"))] == list(range(events_per_run))

    def test_writers_racing_for_one_seq_leave_exactly_one_event(self, store: EventStore) -> None:
        store.append([started("run_1")])
        outcomes = race(
            8,
            lambda i: store.append([write_step("run_1", 1, f"{KEY}_{i}", step_id=f"step_{i}")]),
            loses_with=DuplicateEvent,
        )
        assert sorted(outcomes) == ["lost"] * 7 + ["won"]
        assert [e.seq for e in store.read(RunId("run_1"))] == [0, 1]

    def test_writers_racing_to_commit_one_key_commit_it_once(self, store: EventStore) -> None:
        for i in range(6):
            store.append([started(f"run_{i}"), write_step(f"run_{i}", 1, KEY)])
        outcomes = race(
            6,
            lambda i: store.append([committed(f"run_{i}", 2, KEY)]),
            loses_with=DuplicateIdempotencyKey,
        )
        assert sorted(outcomes) == ["lost"] * 5 + ["won"]
        assert store.find_commit(KEY) is not None
        assert sum(len(store.read(RunId(f"run_{i}"))) for i in range(6)) == 6 * 2 + 1

    # --- bad input -----------------------------------------------------------------------------

    def test_appending_something_that_is_not_an_event_is_refused(self, store: EventStore) -> None:
        raw = started("run_1").model_dump(mode="json")
        with pytest.raises(InvalidEvent, match="item 1 of the batch is a dict"):
            store.append([started("run_2"), raw])  # type: ignore[list-item]
        with pytest.raises(InvalidEvent, match="takes a list of events"):
            store.append(started("run_3"))  # type: ignore[arg-type]
        assert store.run_ids() == []

    def test_a_stored_row_that_does_not_parse_names_run_and_seq(
        self, store: EventStore, write_raw: WriteRaw
    ) -> None:
        store.append([started("run_1")])
        write_raw("run_1", 1, "step_proposed", '{"kind": "step_proposed", "seq": "one"}')
        with pytest.raises(InvalidEvent, match=r"run_1 seq 1: stored event does not parse"):
            store.read(RunId("run_1"))

    def test_an_event_kind_from_a_newer_version_says_so(
        self, store: EventStore, write_raw: WriteRaw
    ) -> None:
        store.append([started("run_1")])
        body = started("run_1").model_dump(mode="json") | {"kind": "tool_call_teleported", "seq": 1}
        write_raw("run_1", 1, "tool_call_teleported", json.dumps(body))
        with pytest.raises(InvalidEvent, match="newer version"):
            store.read(RunId("run_1"))

    def test_a_closed_store_refuses_every_call(self, open_store: OpenStore) -> None:
        store = open_store()
        store.append([started("run_1")])
        store.close()
        store.close()  # closing twice is harmless
        calls: list[Callable[[], object]] = [
            lambda: store.append([write_step("run_1", 1, KEY)]),
            lambda: store.append([]),
            lambda: store.read(RunId("run_1")),
            store.run_ids,
            lambda: store.find_commit(KEY),
        ]
        for call in calls:
            with pytest.raises(StoreClosed, match="store is closed"):
                call()
        reopened = open_store()
        try:
            assert len(reopened.read(RunId("run_1"))) == 1
        finally:
            reopened.close()

    def test_a_store_from_a_newer_schema_is_refused_on_open(
        self, open_store: OpenStore, set_schema_version: Callable[[int], None]
    ) -> None:
        store = open_store()
        store.append([started("run_1")])
        store.close()
        set_schema_version(99)
        with pytest.raises(SchemaTooNew, match="schema version 99"):
            open_store()


def documented_sql() -> str:
    """The example query of docs/event-store.md, which both database backends must run."""
    doc = (Path(__file__).parents[2] / "docs" / "event-store.md").read_text(encoding="utf-8")
    (query,) = re.findall(r"```sql\n(.*?)```", doc, re.DOTALL)
    return query
