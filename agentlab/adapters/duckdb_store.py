"""The embedded default EventStore: one DuckDB file, no server.

One process may have the file open for writing at a time (DuckDB's rule); within that process
any number of threads may share the store, whose writes are serialised by a lock. Each event is
kept as its JSON text next to the columns that queries need (run, seq, kind, time, step, key).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from agentlab.core.errors import BackendError, DuplicateEvent, SchemaTooNew, StoreClosed
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

MIGRATIONS: list[str] = [
    # 1: the event log and the committed-keys index. Append only: a migration's position in
    # this list is the schema version it brings the store to; never edit an entry.
    """
    CREATE SEQUENCE event_pos START 1;
    CREATE TABLE events (
        pos BIGINT NOT NULL DEFAULT nextval('event_pos'),
        run_id VARCHAR NOT NULL,
        seq INTEGER NOT NULL,
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
SCHEMA_VERSION = len(MIGRATIONS)


class DuckDBEventStore:
    """An EventStore in a DuckDB file.

    Args:
        path: The database file (created with its folder if missing), or ``":memory:"``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.url = f"duckdb://{self.path}"
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn: duckdb.DuckDBPyConnection | None = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise BackendError(
                f"{self.url}: cannot open: {exc}",
                hint="is another process writing to this file? DuckDB allows one writer",
            ) from exc
        self._lock = threading.RLock()
        self._migrate()

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            if self._conn is None:
                raise StoreClosed(f"{self.url}: the store is closed", hint="open a new store")
            yield self._conn

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connection() as conn:
            conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS agentlab_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
            )
            row = conn.execute(
                "SELECT value FROM agentlab_meta WHERE key = 'schema_version'"
            ).fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.url}: schema version {version}, but this agentlab knows up to "
                    f"{SCHEMA_VERSION}",
                    hint="upgrade agentlab (pip install -U agentlab), or open another store",
                )
            for migration in MIGRATIONS[version:]:
                conn.execute(migration)
            if version < SCHEMA_VERSION:
                conn.execute(
                    "INSERT OR REPLACE INTO agentlab_meta VALUES ('schema_version', ?)",
                    [str(SCHEMA_VERSION)],
                )

    def append(self, events: Sequence[Event]) -> None:
        """Write all events or none; see :class:`~agentlab.store.EventStore` for the rules."""
        batch = ensure_events(events)
        if not batch:
            with self._connection():  # a closed store refuses even an empty batch
                return
        commits = committed_keys(batch)
        with self._transaction() as conn:
            runs = runs_of(batch)
            tails = {
                run_id: RunTail(last_seq, kind == "run_finished")
                for run_id, last_seq, kind in conn.execute(
                    "SELECT run_id, max(seq), arg_max(kind, seq) FROM events "
                    "WHERE run_id IN (SELECT unnest(?)) GROUP BY run_id",
                    [runs],
                ).fetchall()
            }
            taken = {}
            if commits:
                taken = {
                    key: (run_id, seq)
                    for key, run_id, seq in conn.execute(
                        "SELECT idempotency_key, run_id, seq FROM idempotency_keys "
                        "WHERE idempotency_key IN (SELECT unnest(?))",
                        [[c.idempotency_key for c in commits]],
                    ).fetchall()
                }
            check_batch(batch, tails, where=self.url, taken_keys=taken)
            try:
                conn.executemany(
                    "INSERT INTO events "
                    "(run_id, seq, kind, occurred_at, step_id, idempotency_key, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
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
                )
                if commits:
                    conn.executemany(
                        "INSERT INTO idempotency_keys VALUES (?, ?, ?)",
                        [(c.idempotency_key, c.run_id, c.seq) for c in commits],
                    )
            except duckdb.ConstraintException as exc:  # the backstop behind check_batch
                raise DuplicateEvent(f"{self.url}: {exc}") from exc

    def read(self, run_id: RunId, *, after_seq: int = -1) -> list[Event]:
        """The run's events after ``after_seq``, in order."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT seq, body FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                [run_id, after_seq],
            ).fetchall()
        return [parse_event(body, where=f"{self.url} run {run_id} seq {seq}") for seq, body in rows]

    def run_ids(self) -> list[RunId]:
        """Every run, in the order the runs started."""
        with self._connection() as conn:
            rows = conn.execute("SELECT run_id FROM events WHERE seq = 0 ORDER BY pos").fetchall()
        return [RunId(run_id) for (run_id,) in rows]

    def find_commit(self, idempotency_key: str) -> StepCommitted | None:
        """The commit recorded under ``idempotency_key``, if any."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT e.run_id, e.seq, e.body FROM idempotency_keys k "
                "JOIN events e ON e.run_id = k.run_id AND e.seq = k.seq "
                "WHERE k.idempotency_key = ?",
                [idempotency_key],
            ).fetchone()
        if row is None:
            return None
        run_id, seq, body = row
        event = parse_event(body, where=f"{self.url} run {run_id} seq {seq}")
        assert isinstance(event, StepCommitted)
        return event

    def close(self) -> None:
        """Close the file; later calls raise StoreClosed. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> DuckDBEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
