"""The in-memory EventStore: the reference backend, for tests and throwaway notebooks.

It keeps each event as its JSON text, as the database backends do, so reads go through the
same parsing path and a caller can never change a stored event through a shared object.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from agentlab.core.errors import SchemaTooNew, StoreClosed
from agentlab.core.events import Event, StepCommitted, ensure_events, parse_event
from agentlab.core.ids import RunId
from agentlab.store.rules import RunTail, check_batch, committed_keys, runs_of


@dataclass
class MemoryLog:
    """The data behind one or more MemoryEventStore handles (shared to simulate a reopen)."""

    rows: dict[RunId, list[tuple[str, str]]] = field(default_factory=dict)
    """Per run, (kind, event JSON) in seq order."""
    keys: dict[str, tuple[RunId, int]] = field(default_factory=dict)
    schema_version: int = 1
    """Kept so a memory store behaves like the others when a newer version's data is met."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryEventStore:
    """An EventStore held in process memory.

    Args:
        log: The data to use; pass another handle's ``log`` to open the same store twice.
    """

    url = "memory://"
    SCHEMA_VERSION = 1

    def __init__(self, log: MemoryLog | None = None) -> None:
        self.log = log if log is not None else MemoryLog()
        if self.log.schema_version > self.SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.url}: schema version {self.log.schema_version}, but this agentlab "
                f"knows up to {self.SCHEMA_VERSION}",
                hint="upgrade agentlab (pip install -U agentlab)",
            )
        self._is_closed = False

    def _check_open(self) -> None:
        if self._is_closed:
            raise StoreClosed(f"{self.url}: the store is closed", hint="open a new store")

    def append(self, events: Sequence[Event]) -> None:
        """Write all events or none; see :class:`~agentlab.store.EventStore` for the rules."""
        self._check_open()
        batch = ensure_events(events)
        if not batch:
            return
        with self.log.lock:
            tails = {}
            for run_id in runs_of(batch):
                rows = self.log.rows.get(run_id)
                if rows:
                    tails[run_id] = RunTail(len(rows) - 1, rows[-1][0] == "run_finished")
            taken = {
                c.idempotency_key: self.log.keys[c.idempotency_key]
                for c in committed_keys(batch)
                if c.idempotency_key in self.log.keys
            }
            check_batch(batch, tails, where=self.url, taken_keys=taken)
            for event in batch:
                self.log.rows.setdefault(event.run_id, []).append(
                    (event.kind, event.model_dump_json())
                )
            for commit in committed_keys(batch):
                assert commit.idempotency_key is not None
                self.log.keys[commit.idempotency_key] = (commit.run_id, commit.seq)

    def read(self, run_id: RunId, *, after_seq: int = -1) -> list[Event]:
        """The run's events after ``after_seq``, in order."""
        self._check_open()
        with self.log.lock:
            rows = list(self.log.rows.get(run_id, ())[after_seq + 1 :])
        return [
            parse_event(body, where=f"{self.url} run {run_id} seq {after_seq + 1 + offset}")
            for offset, (_, body) in enumerate(rows)
        ]

    def run_ids(self) -> list[RunId]:
        """Every run, in the order the runs started."""
        self._check_open()
        with self.log.lock:
            return list(self.log.rows)

    def find_commit(self, idempotency_key: str) -> StepCommitted | None:
        """The commit recorded under ``idempotency_key``, if any."""
        self._check_open()
        with self.log.lock:
            found = self.log.keys.get(idempotency_key)
            if found is None:
                return None
            run_id, seq = found
            body = self.log.rows[run_id][seq][1]
        event = parse_event(body, where=f"{self.url} run {run_id} seq {seq}")
        assert isinstance(event, StepCommitted)
        return event

    def close(self) -> None:
        """Close this handle; the data stays for other handles on the same log."""
        self._is_closed = True

    def __enter__(self) -> MemoryEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
