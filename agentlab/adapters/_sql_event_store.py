"""What the DuckDB and PostgreSQL event stores share: the append flow, reads, schema versions.

The SQL below runs unchanged on both (placeholders are written ``?``; a backend whose driver
wants another style rewrites them in :meth:`SqlEventStore._sql`). A backend supplies the
connection handling, the fastest way to insert rows, and how its driver's errors map to
agentlab's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Self

from agentlab.adapters._schema import apply_migrations
from agentlab.core.events import (
    Event,
    StepCommitted,
    ensure_events,
    idempotency_key_of,
    parse_event,
    step_id_of,
)
from agentlab.core.ids import RunId
from agentlab.store.rules import RunTail, check_batch, committed_keys, runs_of

EventRow = tuple[str, int, str, Any, str | None, str | None, str]
"""(run_id, seq, kind, occurred_at, step_id, idempotency_key, body JSON)."""
KeyRow = tuple[str, str, int]
"""(idempotency_key, run_id, seq)."""

_TAKEN_KEYS = (
    "SELECT idempotency_key, run_id, seq FROM idempotency_keys WHERE idempotency_key = ANY(?)"
)
_READ = "SELECT seq, body::text FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"
_RUN_IDS = "SELECT run_id FROM events WHERE seq = 0 ORDER BY pos"
_FIND_COMMIT = """
    SELECT e.run_id, e.seq, e.body::text FROM idempotency_keys k
    JOIN events e ON e.run_id = k.run_id AND e.seq = k.seq
    WHERE k.idempotency_key = ?
"""


class SqlEventStore(ABC):
    """Base of the SQL event stores; see :class:`agentlab.store.EventStore` for the contract."""

    url: str
    MIGRATIONS: ClassVar[list[str]]
    """Append only: a migration's position in this list is the schema version it brings."""
    TAILS_SQL: ClassVar[str] = """
        SELECT e.run_id, e.seq, e.kind FROM events e
        JOIN (SELECT run_id, max(seq) AS seq FROM events WHERE run_id = ANY(?) GROUP BY run_id) t
          ON e.run_id = t.run_id AND e.seq = t.seq
    """
    """(run_id, last seq, kind of the last event) of the runs in a list; on the append path."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A connection inside a transaction; raises StoreClosed once the store is closed."""

    @abstractmethod
    def _insert(self, conn: Any, events: list[EventRow], keys: list[KeyRow]) -> None:
        """Insert the rows; a taken primary key raises DuplicateEvent or DuplicateIdempotencyKey."""

    def _sql(self, statement: str) -> str:
        """The statement in the driver's placeholder style (``?`` by default)."""
        return statement

    def _lock_schema(self, conn: Any) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Keep other processes from migrating at the same time, where the backend can."""

    @property
    def schema_version(self) -> int:
        """The schema version this agentlab writes."""
        return len(self.MIGRATIONS)

    def _migrate(self) -> None:
        with self._transaction() as conn:
            self._lock_schema(conn)
            apply_migrations(
                conn, key="schema_version", migrations=self.MIGRATIONS, url=self.url, sql=self._sql
            )

    def append(self, events: Sequence[Event]) -> None:
        """Write all events or none; see :class:`~agentlab.store.EventStore` for the rules."""
        batch = ensure_events(events)
        commits = committed_keys(batch)
        with self._transaction() as conn:  # a closed store refuses even an empty batch
            if not batch:
                return
            tails = {
                run_id: RunTail(seq, kind == "run_finished")
                for run_id, seq, kind in conn.execute(
                    self._sql(self.TAILS_SQL), [runs_of(batch)]
                ).fetchall()
            }
            taken = {}
            if commits:
                keys = [c.idempotency_key for c in commits]
                rows = conn.execute(self._sql(_TAKEN_KEYS), [keys]).fetchall()
                taken = {key: (run_id, seq) for key, run_id, seq in rows}
            check_batch(batch, tails, where=self.url, taken_keys=taken)
            self._insert(
                conn,
                [
                    (
                        e.run_id,
                        e.seq,
                        e.kind,
                        e.at,
                        step_id_of(e),
                        idempotency_key_of(e),
                        e.model_dump_json(),
                    )
                    for e in batch
                ],
                [(c.idempotency_key, c.run_id, c.seq) for c in commits],  # type: ignore[misc]
            )

    def read(self, run_id: RunId, *, after_seq: int = -1) -> list[Event]:
        """The run's events after ``after_seq``, in order."""
        with self._transaction() as conn:
            rows = conn.execute(self._sql(_READ), [run_id, after_seq]).fetchall()
        return [parse_event(body, where=f"{self.url} run {run_id} seq {seq}") for seq, body in rows]

    def run_ids(self) -> list[RunId]:
        """Every run, in the order the runs started."""
        with self._transaction() as conn:
            rows = conn.execute(_RUN_IDS).fetchall()
        return [RunId(run_id) for (run_id,) in rows]

    def find_commit(self, idempotency_key: str) -> StepCommitted | None:
        """The commit recorded under ``idempotency_key``, if any."""
        with self._transaction() as conn:
            row = conn.execute(self._sql(_FIND_COMMIT), [idempotency_key]).fetchone()
        if row is None:
            return None
        run_id, seq, body = row
        event = parse_event(body, where=f"{self.url} run {run_id} seq {seq}")
        assert isinstance(event, StepCommitted)
        return event

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release the connections; later calls raise StoreClosed. Closing twice is harmless."""
