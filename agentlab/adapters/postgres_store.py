"""The production EventStore: PostgreSQL through psycopg 3.

Many processes and threads may append at once. Each append is one transaction: it reads the
tails of the runs it touches, checks the batch (``agentlab.store.rules``), and copies the rows
in. Two writers racing for the same (run_id, seq) or the same idempotency key are settled by
the primary keys: one wins, the other gets DuplicateEvent or DuplicateIdempotencyKey and
nothing of its batch is written. Triggers refuse UPDATE, DELETE and TRUNCATE, so the log is
append-only in the database itself, not only in this code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from agentlab.adapters._sql_event_store import EventRow, KeyRow, SqlEventStore
from agentlab.adapters._urls import redact_url
from agentlab.core.errors import (
    BackendError,
    DuplicateEvent,
    DuplicateIdempotencyKey,
    MissingDependency,
    StoreClosed,
)

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "PostgresEventStore needs psycopg and psycopg-pool",
        hint="pip install 'agentlab[postgres]'",
    ) from exc


def connect_pool(url: str, *, max_connections: int) -> ConnectionPool:
    """A connection pool to ``url``, after one plain connection that says why it fails.

    Raises:
        BackendError: the server cannot be reached or the database does not exist; the
            message carries libpq's reason, never the password.
    """
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        raise BackendError(
            f"{redact_url(url)}: cannot connect: {str(exc).strip()}",
            hint="is the server up, and does the database exist?",
        ) from exc
    return ConnectionPool(
        url,
        min_size=1,
        max_size=max_connections,
        open=True,
        timeout=30,
        kwargs={"autocommit": False},
    )


class PostgresEventStore(SqlEventStore):
    """An EventStore in a PostgreSQL database.

    Args:
        url: A libpq URL, e.g. ``postgresql://agentlab@db.internal/agentlab``. Put the
            password in ``PGPASSWORD`` or ``~/.pgpass`` rather than in the URL.
        max_connections: Size of the connection pool that threads share.
    """

    MIGRATIONS: ClassVar[list[str]] = [
        # 1: the event log, the committed-keys index, and triggers that keep both append-only.
        # Append only: a migration's position in this list is the schema version it brings.
        """
        CREATE TABLE events (
            pos BIGINT GENERATED ALWAYS AS IDENTITY,
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 0),
            kind TEXT NOT NULL,
            occurred_at TIMESTAMPTZ NOT NULL,
            step_id TEXT,
            idempotency_key TEXT,
            body JSONB NOT NULL,
            CONSTRAINT events_run_seq PRIMARY KEY (run_id, seq)
        );
        CREATE INDEX events_pos ON events (pos);
        CREATE TABLE idempotency_keys (
            idempotency_key TEXT CONSTRAINT idempotency_keys_key PRIMARY KEY,
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL
        );
        CREATE FUNCTION agentlab_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'agentlab: % is append-only; % refused', TG_TABLE_NAME, TG_OP;
        END $$;
        CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
            FOR EACH STATEMENT EXECUTE FUNCTION agentlab_refuse_change();
        CREATE TRIGGER idempotency_keys_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON idempotency_keys
            FOR EACH STATEMENT EXECUTE FUNCTION agentlab_refuse_change();
        """,
    ]

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self.url = redact_url(url)
        self._pool: ConnectionPool | None = connect_pool(url, max_connections=max_connections)
        try:
            self._migrate()
        except BaseException:
            self.close()  # a pool left to the garbage collector joins its threads from __del__
            raise

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        pool = self._pool
        if pool is None:
            raise StoreClosed(f"{self.url}: the store is closed", hint="open a new store")
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except pg_errors.UniqueViolation as exc:  # the backstop behind check_batch
            constraint = exc.diag.constraint_name
            if constraint == "idempotency_keys_key":
                raise DuplicateIdempotencyKey(
                    f"{self.url}: an idempotency key of the batch was committed concurrently",
                    hint="return the recorded result (EventStore.find_commit) instead",
                ) from exc
            raise DuplicateEvent(
                f"{self.url}: another writer appended at the same (run_id, seq) first",
                hint="re-read the run and continue after its last seq",
            ) from exc
        except psycopg.OperationalError as exc:
            raise BackendError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _lock_schema(self, conn: psycopg.Connection) -> None:
        # One migrator at a time, however many processes open the store together.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlab_schema'))")

    def _insert(self, conn: psycopg.Connection, events: list[EventRow], keys: list[KeyRow]) -> None:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY events (run_id, seq, kind, occurred_at, step_id, idempotency_key, body) "
                "FROM STDIN"
            ) as copy:
                for row in events:
                    copy.write_row(row)
            if keys:
                cur.executemany("INSERT INTO idempotency_keys VALUES (%s, %s, %s)", keys)

    def close(self) -> None:
        """Close the pool; later calls raise StoreClosed. Closing twice is harmless."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
