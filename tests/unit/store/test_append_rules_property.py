"""Random batches, valid and broken, against the memory and DuckDB stores side by side.

Both stores must give the same answer to every batch, a refused batch must change nothing,
every batch a plain reading of the rules allows must be accepted, and whatever was accepted
must obey the rules when read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from hypothesis import event as note_outcome
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlab.adapters.duckdb_store import DuckDBEventStore
from agentlab.core.errors import StoreError
from agentlab.core.events import (
    Event,
    RunFinished,
    RunStarted,
    StepCommitted,
    StepProposed,
)
from agentlab.core.ids import RunId
from agentlab.core.records import Run, Step
from agentlab.store import EventStore, MemoryEventStore

AT = datetime(2026, 1, 1, tzinfo=UTC)
RUNS = ["run_a", "run_b", "run_c"]
KEYS = [f"idk_key_number_{i:04d}" for i in range(2)]

# An event is drawn as (run, seq offset from the run's next seq, kind, key); offsets of -1 and
# +1 make duplicates and gaps, kinds out of place make bad starts and events after the end.
# "next" is what a well-behaved writer would append: run_started at seq 0, else a proposal.
DRAWN = st.tuples(
    st.sampled_from(RUNS),
    st.sampled_from([0, 0, 0, 0, -1, 1]),
    st.sampled_from(["next", "next", "next", "committed", "committed", "finished", "started"]),
    st.sampled_from(KEYS),
)
BATCHES = st.lists(st.lists(DRAWN, min_size=1, max_size=4), min_size=1, max_size=12)


def build(run: str, seq: int, kind: str, key: str) -> Event:
    run_id = RunId(run)
    if kind == "next":
        kind = "started" if seq == 0 else "proposed"
    if kind == "started":
        record = Run(run_id=run_id, task="t", actor="alice", started_at=AT)
        return RunStarted(run_id=run_id, seq=seq, at=AT, run=record)
    if kind == "proposed":
        step = Step(
            step_id=f"step_{seq}",
            run_id=run_id,
            position=seq,
            tool="send_mail",
            arguments={},
            side_effect="write",
            idempotency_key=key,
        )
        return StepProposed(run_id=run_id, seq=seq, at=AT, step=step)
    if kind == "committed":
        return StepCommitted(
            run_id=run_id,
            seq=seq,
            at=AT,
            step_id=f"step_{seq}",
            idempotency_key=key,
            result={"ok": True},
            latency_ms=1.0,
        )
    return RunFinished(run_id=run_id, seq=seq, at=AT, outcome="succeeded")


def is_allowed(logs: dict[str, list[Event]], batch: list[Event]) -> bool:
    """The append rules, read plainly: what a correct store must accept."""
    lengths = {run: len(events) for run, events in logs.items()}
    ended = {run: bool(ev) and ev[-1].kind == "run_finished" for run, ev in logs.items()}
    keys = {e.idempotency_key for ev in logs.values() for e in ev if isinstance(e, StepCommitted)}
    for event in batch:
        run = event.run_id
        if event.seq != lengths.get(run, 0) or ended.get(run, False):
            return False
        if (event.seq == 0) != (event.kind == "run_started"):
            return False
        if isinstance(event, StepCommitted):
            if event.idempotency_key in keys:
                return False
            keys.add(event.idempotency_key)
        lengths[run] = event.seq + 1
        ended[run] = event.kind == "run_finished"
    return True


def snapshot(store: EventStore) -> dict[str, list[Event]]:
    return {run: store.read(run) for run in store.run_ids()}


def attempt(store: EventStore, batch: list[Event]) -> str:
    try:
        store.append(batch)
    except StoreError as exc:
        return type(exc).__name__
    return "accepted"


@contextmanager
def both_stores() -> Iterator[tuple[EventStore, EventStore]]:
    memory, duck = MemoryEventStore(), DuckDBEventStore(":memory:")
    try:
        yield memory, duck
    finally:
        duck.close()


@settings(max_examples=80, deadline=None)
@given(BATCHES)
def test_both_stores_apply_exactly_the_batches_the_rules_allow(drawn: list[list[tuple]]) -> None:
    with both_stores() as (memory, duck):
        for drawn_batch in drawn:
            before = snapshot(memory)
            next_seq = {run: len(events) for run, events in before.items()}
            batch, planned = [], dict(next_seq)
            for run, offset, kind, key in drawn_batch:
                seq = max(0, planned.get(run, 0) + offset)
                batch.append(build(run, seq, kind, key))
                planned[run] = seq + 1

            outcome = attempt(memory, batch)
            note_outcome(f"batch {outcome}")
            assert attempt(duck, batch) == outcome
            assert (outcome == "accepted") == is_allowed(before, batch)
            after = snapshot(memory)
            assert snapshot(duck) == after
            if outcome != "accepted":
                assert after == before  # all or nothing
            committed = [
                e.idempotency_key
                for ev in after.values()
                for e in ev
                if isinstance(e, StepCommitted)
            ]
            assert len(committed) == len(set(committed))
            for events in after.values():
                assert [e.seq for e in events] == list(range(len(events)))
                assert events[0].kind == "run_started"
                assert all(e.kind != "run_finished" for e in events[:-1])
