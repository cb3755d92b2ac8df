"""The EventStore port: an append-only log of run events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agentlab.core.events import Event, StepCommitted
from agentlab.core.ids import RunId


@runtime_checkable
class EventStore(Protocol):
    """Append-only log of run events.

    No event is ever updated or deleted: a run's current state is a projection of its events
    (:func:`agentlab.store.project_run`). Every backend passes ``tests/contracts/event_store.py``.

    The rules every backend enforces on :meth:`append`, for the whole batch or nothing:

    * each item is an event (else :class:`~agentlab.core.errors.InvalidEvent`);
    * a run begins with ``run_started`` at seq 0, and its seqs follow one another without gaps
      (else ``InvalidEvent``);
    * an existing (run_id, seq) is refused with :class:`~agentlab.core.errors.DuplicateEvent`:
      two writers racing for the same position cannot both win;
    * a committed ``idempotency_key`` seen twice is refused with
      :class:`~agentlab.core.errors.DuplicateIdempotencyKey`: a side effect is committed once;
    * nothing is appended to a run after its ``run_finished``.
    """

    url: str
    """Where the store lives, with any password removed."""

    def append(self, events: Sequence[Event]) -> None:
        """Write all events or none, under the rules above."""
        ...

    def read(self, run_id: RunId, *, after_seq: int = -1) -> list[Event]:
        """The run's events with ``seq > after_seq``, in order; empty for an unknown run."""
        ...

    def run_ids(self) -> list[RunId]:
        """Every run in the store, in the order the runs started."""
        ...

    def find_commit(self, idempotency_key: str) -> StepCommitted | None:
        """The commit recorded under ``idempotency_key``, or None if there is none."""
        ...

    def close(self) -> None:
        """Release the store; later calls raise :class:`~agentlab.core.errors.StoreClosed`."""
        ...
