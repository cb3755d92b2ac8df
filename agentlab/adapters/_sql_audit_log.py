"""What the DuckDB and PostgreSQL audit logs share: the table, the chained append, reads.

Records are kept with the columns an auditor filters on (seq, time, run, step, actor,
decision, tool, key) and the whole record as JSON. Appends are serialised -- a lock in the
process for DuckDB, an advisory lock in the database for PostgreSQL -- so seqs stay gapless
and each record chains to the one before it, whatever the number of writers.

The JSON is kept as text, exactly as written: a record read back must hash as it did when it
was appended, and PostgreSQL's JSONB rewrites numbers (``1e16`` comes back as an integer,
``-0.0`` as ``0.0``). Query it with ``CAST(body AS JSON) ->> 'field'`` on both databases.
"""

from __future__ import annotations

import json
from typing import Any, Self

from pydantic import ValidationError

from agentlab.adapters._databases import Database
from agentlab.adapters._schema import apply_migrations
from agentlab.core.errors import InvalidEvent
from agentlab.store.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    ChainCheck,
    chain,
    verify_chain,
)

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
        try:
            with db.transaction() as conn:
                db.serialise(conn)
                apply_migrations(
                    conn,
                    key="audit_schema_version",
                    migrations=audit_migrations(db),
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

        Raises:
            InvalidEvent: a row no longer parses as a record (it was edited); :meth:`verify`
                reports it as a break in the chain instead.
        """
        return [self._record(row) for row in self._rows(after_seq=after_seq, run_id=run_id)]

    def verify(self) -> ChainCheck:
        """Check the whole chain; a row that no longer parses breaks it at its position."""
        rows = self._rows(after_seq=-1, run_id=None)
        records: list[AuditRecord] = []
        for index, row in enumerate(rows):
            try:
                records.append(_parse(row))
            except ValueError as exc:
                before = verify_chain(records)  # an earlier break is the first one
                head = rows[-1][_COLUMNS.index("hash")]
                if not before.is_intact:
                    return before._replace(checked=len(rows), head_hash=head)
                problem = f"the record no longer parses, so it was edited: {exc}"
                return ChainCheck(False, len(rows), index, problem, head)
        return verify_chain(records)

    def _rows(self, *, after_seq: int, run_id: str | None) -> list[tuple[Any, ...]]:
        query = f"SELECT {', '.join(_COLUMNS)}, body::text FROM audit_log WHERE seq > ?"
        params: list[Any] = [after_seq]
        if run_id is not None:
            query += " AND run_id = ?"
            params.append(run_id)
        with self._db.transaction() as conn:
            return conn.execute(self._db.sql(query + " ORDER BY seq"), params).fetchall()

    def _record(self, row: tuple[Any, ...]) -> AuditRecord:
        try:
            return _parse(row)
        except ValueError as exc:
            raise InvalidEvent(f"{self.url}: audit record {row[0]} does not parse: {exc}") from exc

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


def _parse(row: tuple[Any, ...]) -> AuditRecord:
    """The record a row holds: its JSON, with the filter columns laid over it.

    Raises:
        ValueError: the row holds no valid record; the message is one line.
    """
    *columns, body = row
    try:
        fields = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"the body is a JSON {type(fields).__name__}, not an object")
    fields.update(zip(_COLUMNS, columns, strict=True))
    try:
        return AuditRecord.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"{where}: {error['msg']}" if where else error["msg"]) from None


def audit_migrations(db: Database) -> list[str]:
    """The audit table's migrations in ``db``'s dialect: a migration's position is its version."""
    return [
        AUDIT_TABLE.format(json_type=db.json_type) + db.append_only("audit_log"),
        # 2: keep the JSON's text as written (see the module's docstring). DuckDB's JSON is
        # text already, and DuckDB cannot change a column's type in a table with an index.
        BODY_AS_TEXT if db.json_type == "JSONB" else "SELECT 2",
    ]


BODY_AS_TEXT = "ALTER TABLE audit_log ALTER COLUMN body TYPE TEXT USING body::text"
"""Version 2 on PostgreSQL: JSONB rewrote numbers, so records read back hashed differently."""

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
