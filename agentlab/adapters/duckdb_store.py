"""The embedded default EventStore: one DuckDB file, no server.

One process may have the file open for writing at a time (DuckDB's rule); within that process
any number of threads may share the store, whose calls are serialised by a lock. Each event is
kept as its JSON text next to the columns that queries need (run, seq, kind, time, step, key).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import ClassVar

import duckdb

from agentlab.adapters._databases import DuckDBFile
from agentlab.adapters._sql_event_store import EventRow, KeyRow, SqlEventStore
from agentlab.core.errors import DuplicateEvent, DuplicateIdempotencyKey


class DuckDBEventStore(SqlEventStore):
    """An EventStore in a DuckDB file.

    Args:
        path: The database file (created with its folder if missing), or ``":memory:"``.
    """

    MIGRATIONS: ClassVar[list[str]] = [
        # 1: the event log and the committed-keys index. Never edit an entry; append.
        """
        CREATE SEQUENCE event_pos START 1;
        CREATE TABLE events (
            pos BIGINT NOT NULL DEFAULT nextval('event_pos'),
            run_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 0),
            kind VARCHAR NOT NULL,
            occurred_at TIMESTAMPTZ NOT NULL,
            step_id VARCHAR,
            idempotency_key VARCHAR,
            body JSON NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        CREATE TABLE idempotency_keys (
            idempotency_key VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL
        );
        """,
    ]

    # DuckDB scans for either form; its arg_max does it in one pass instead of two (~2.5x faster).
    TAILS_SQL: ClassVar[str] = (
        "SELECT run_id, max(seq), arg_max(kind, seq) FROM events "
        "WHERE run_id = ANY(?) GROUP BY run_id"
    )

    def __init__(self, path: str | Path) -> None:
        self._db = DuckDBFile(path, what="event store")
        self.path, self.url = self._db.path, self._db.url
        self._migrate()

    def _transaction(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._db.transaction()

    def _insert(
        self, conn: duckdb.DuckDBPyConnection, events: list[EventRow], keys: list[KeyRow]
    ) -> None:
        # One statement over column lists: executemany() runs a statement per row, ~25x slower.
        try:
            conn.execute(
                "INSERT INTO events "
                "(run_id, seq, kind, occurred_at, step_id, idempotency_key, body) "
                "SELECT unnest(?::VARCHAR[]), unnest(?::INTEGER[]), unnest(?::VARCHAR[]), "
                "unnest(?::TIMESTAMPTZ[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                "unnest(?::JSON[])",
                [list(column) for column in zip(*events, strict=True)],
            )
            if keys:
                conn.execute(
                    "INSERT INTO idempotency_keys "
                    "SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::INTEGER[])",
                    [list(column) for column in zip(*keys, strict=True)],
                )
        except duckdb.ConstraintException as exc:  # the backstop behind check_batch
            if "idempotency_key" in str(exc):
                raise DuplicateIdempotencyKey(f"{self.url}: {exc}") from exc
            raise DuplicateEvent(f"{self.url}: {exc}") from exc

    def close(self) -> None:
        """Close the file; later calls raise StoreClosed. Closing twice is harmless."""
        self._db.close()
