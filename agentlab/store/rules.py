"""The append rules every EventStore backend enforces, written once.

A backend reads the tail of each run a batch touches (its last seq, and whether it finished),
calls :func:`check_batch`, and writes the batch in one transaction. The database's unique
constraints on (run_id, seq) and on committed idempotency keys stay as the backstop for two
writers racing between the check and the write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from agentlab.core.errors import DuplicateEvent, DuplicateIdempotencyKey, InvalidEvent
from agentlab.core.events import Event, RunFinished, RunStarted, StepCommitted
from agentlab.core.ids import RunId


class RunTail(NamedTuple):
    """What a store knows of a run's end: its last seq, and whether it has finished."""

    last_seq: int
    is_finished: bool


def committed_keys(events: Sequence[Event]) -> list[StepCommitted]:
    """The commits in ``events`` that carry an idempotency key."""
    return [e for e in events if isinstance(e, StepCommitted) and e.idempotency_key is not None]


def runs_of(events: Sequence[Event]) -> list[RunId]:
    """The distinct runs of a batch, in first-seen order."""
    return list(dict.fromkeys(e.run_id for e in events))


def check_batch(
    events: Sequence[Event],
    tails: Mapping[RunId, RunTail],
    *,
    where: str,
    taken_keys: Mapping[str, tuple[RunId, int]] | None = None,
) -> None:
    """Raise if ``events`` may not be appended to a store whose runs end as ``tails`` says.

    Args:
        events: The batch, already checked to be events.
        tails: The tail of every run of the batch that the store already holds.
        where: The store's URL, for messages.
        taken_keys: Idempotency keys of the batch that the store has committed already,
            mapped to the (run_id, seq) of that commit.

    Raises:
        DuplicateEvent: an event's (run_id, seq) is taken.
        DuplicateIdempotencyKey: a key is committed already, or twice in the batch.
        InvalidEvent: a gap in seqs, a run that does not begin with run_started, or an event
            after run_finished.
    """
    next_seq: dict[RunId, int] = {}
    finished: dict[RunId, bool] = {}
    for run_id, tail in tails.items():
        next_seq[run_id] = tail.last_seq + 1
        finished[run_id] = tail.is_finished
    for event in events:
        expected = next_seq.get(event.run_id, 0)
        if event.seq < expected:
            raise DuplicateEvent(
                f"{where}: run {event.run_id} already has an event at seq {event.seq}",
                hint="another writer appended first; "
                f"re-read the run and continue at seq {expected}",
            )
        if event.seq > expected:
            raise InvalidEvent(
                f"{where}: run {event.run_id}: seq {event.seq} leaves a gap; expected {expected}",
                hint="seqs of a run follow one another from 0",
            )
        if finished.get(event.run_id, False):
            raise InvalidEvent(
                f"{where}: run {event.run_id} has finished; {event.kind} at seq {event.seq} "
                "cannot follow run_finished"
            )
        if (event.seq == 0) != isinstance(event, RunStarted):
            raise InvalidEvent(
                f"{where}: run {event.run_id}: seq 0 must be run_started and only seq 0 may be; "
                f"got {event.kind} at seq {event.seq}"
            )
        next_seq[event.run_id] = expected + 1
        finished[event.run_id] = isinstance(event, RunFinished)

    seen: dict[str, tuple[RunId, int]] = dict(taken_keys or {})
    for commit in committed_keys(events):
        key = commit.idempotency_key
        assert key is not None  # committed_keys() keeps keyed commits only
        if key in seen:
            first_run, first_seq = seen[key]
            raise DuplicateIdempotencyKey(
                f"{where}: idempotency key {key} is committed already "
                f"(run {first_run} seq {first_seq}); run {commit.run_id} seq {commit.seq} "
                "would repeat the side effect",
                hint="return the recorded result (EventStore.find_commit); do not commit again",
            )
        seen[key] = (commit.run_id, commit.seq)
