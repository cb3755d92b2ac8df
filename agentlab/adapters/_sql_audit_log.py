"""What the DuckDB and PostgreSQL audit logs share: the table, the chained append, reads.

Records are kept with the columns an auditor filters on (seq, time, run, step, actor,
decision, tool, key) and the whole record as JSON. Appends are serialised -- a lock in the
process for DuckDB, an advisory lock in the database for PostgreSQL -- so seqs stay gapless
and each record chains to the one before it, whatever the number of writers.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import ValidationError

from agentlab.adapters._databases import Database
from agentlab.adapters._schema import apply_migrations
from agentlab.core.errors import InvalidEvent
from agentlab.store.audit import GENESIS_HASH, AuditEntry, AuditRecord, chain

_COLUMNS = (
    "seq",
    "run_id",
    "step_id",
    "actor",
    "decision",
    "tool",
    "idempotency_key",
    "prev_hash",
    "hash",
)
_HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_INSERT = (
    "INSERT INTO audit_log (seq, occurred_at, run_id, step_id, actor, decision, tool, "
    "idempotency_key, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqlAuditLog:
    """An audit log in a SQL database; see :class:`agentlab.store.audit.AuditLog`.

    Args:
        db: The database (``DuckDBFile`` or ``PostgresDatabase``).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.url = db.url
        migrations = [AUDIT_TABLE.format(json_type=db.json_type) + db.append_only("audit_log")]
        try:
            with db.transaction() as conn:
                db.serialise(conn)
                apply_migrations(
                    conn,
                    key="audit_schema_version",
                    migrations=migrations,
                    url=self.url,
                    sql=db.sql,
                )
        except BaseException:
            db.close()  # do not leave a pool to the garbage collector
            raise

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Number and chain the entry, write it, and return the record."""
        with self._db.transaction() as conn:
            self._db.serialise(conn)
            row = conn.execute(_HEAD).fetchone()
            seq, prev_hash = (row[0], row[1]) if row else (-1, GENESIS_HASH)
            record = chain(entry, seq=seq + 1, prev_hash=prev_hash)
            conn.execute(
                self._db.sql(_INSERT),
                [
                    record.seq,
                    record.at,
                    record.run_id,
                    record.step_id,
                    record.actor,
                    record.decision,
                    record.tool,
                    record.idempotency_key,
                    record.model_dump_json(),
                    record.prev_hash,
                    record.hash,
                ],
            )
            return record

    def read(self, *, after_seq: int = -1, run_id: str | None = None) -> list[AuditRecord]:
        """Records after ``after_seq`` in order, only one run's if ``run_id`` is given.

        The columns an auditor filters on override the JSON's copy of them, so an edit to a
        column or to the JSON changes the record and :func:`~agentlab.store.audit.verify_chain`
        finds it. (The ``occurred_at`` column is an index only; the record's time is the JSON's.)
        """
        query = f"SELECT {', '.join(_COLUMNS)}, body::text FROM audit_log WHERE seq > ?"
        params: list[Any] = [after_seq]
        if run_id is not None:
            query += " AND run_id = ?"
            params.append(run_id)
        with self._db.transaction() as conn:
            rows = conn.execute(self._db.sql(query + " ORDER BY seq"), params).fetchall()
        return [self._record(row) for row in rows]

    def _record(self, row: tuple[Any, ...]) -> AuditRecord:
        *columns, body = row
        try:
            stored = AuditRecord.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidEvent(f"{self.url}: audit record {row[0]} does not parse: {exc}") from exc
        return stored.model_copy(update=dict(zip(_COLUMNS, columns, strict=True)))

    def head(self) -> tuple[int, str]:
        """The last record's (seq, hash); (-1, genesis hash) for an empty log."""
        with self._db.transaction() as conn:
            row = conn.execute(_HEAD).fetchone()
        return (row[0], row[1]) if row else (-1, GENESIS_HASH)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connections; later calls raise StoreClosed."""
        self._db.close()


AUDIT_TABLE = """
    CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY CHECK (seq >= 0),
        occurred_at TIMESTAMPTZ NOT NULL,
        run_id TEXT,
        step_id TEXT,
        actor TEXT NOT NULL,
        decision TEXT NOT NULL,
        tool TEXT,
        idempotency_key TEXT,
        body {json_type} NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_log_run ON audit_log (run_id);
"""
"""Version 1 of the audit table, with the backend's JSON type."""
