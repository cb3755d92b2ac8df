"""The two SQL databases the logs live in, behind one small interface.

The audit log and the conversation log run the same SQL on both; what differs -- how to
connect, how to hold a transaction, placeholder style, how to keep other writers out, the
JSON and binary types, append-only triggers -- is here. (The event store predates this and
keeps its own, tuned, copies: COPY on PostgreSQL, column lists on DuckDB.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb

from agentlab.core.errors import AgentlabError, BackendError, StoreClosed


class Database(Protocol):
    """A connection source for one log's tables."""

    url: str
    json_type: str
    blob_type: str

    def transaction(self) -> Any:
        """A context manager giving a connection inside a transaction."""
        ...

    def sql(self, statement: str) -> str:
        """``statement`` with ``?`` placeholders in the driver's style."""
        ...

    def serialise(self, conn: Any) -> None:
        """Keep other writers out until the transaction ends."""
        ...

    def append_only(self, table: str) -> str:
        """SQL that makes ``table`` refuse UPDATE, DELETE and TRUNCATE, if the database can."""
        ...

    def close(self) -> None:
        """Release the connections; later calls raise StoreClosed."""
        ...


class DuckDBFile:
    """One DuckDB file, one connection, a lock: DuckDB allows one writing process per file.

    Args:
        path: The file (created with its folder if missing), or ``":memory:"``.
        what: What lives there, for messages (``audit log``).
        closed_error: What a call after :meth:`close` raises.
    """

    json_type = "JSON"
    blob_type = "BLOB"

    def __init__(
        self,
        path: str | Path,
        *,
        what: str,
        closed_error: type[AgentlabError] = StoreClosed,
    ) -> None:
        self.path = str(path)
        self.url = f"duckdb://{self.path}"
        self._what = what
        self._closed_error = closed_error
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn: duckdb.DuckDBPyConnection | None = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise BackendError(
                f"{self.url}: cannot open the {what}: {exc}",
                hint="is another process writing to this file? DuckDB allows one writer",
            ) from exc
        self._lock = threading.RLock()

    @contextmanager
    def locked(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, outside any transaction, with the lock held (it is re-entrant)."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise self._closed_error(
                    f"{self.url}: the {self._what} is closed", hint="open it again"
                )
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection inside a transaction, holding the lock; rolled back on error."""
        with self.locked() as conn:
            conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def sql(self, statement: str) -> str:
        """DuckDB takes ``?`` as it is."""
        return statement

    def serialise(self, conn: Any) -> None:
        """Nothing to do: the lock held by :meth:`transaction` already serialises writers."""

    def append_only(self, table: str) -> str:
        """Nothing: DuckDB has no triggers; the hash chain is what finds an edit."""
        return ""

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresDatabase:
    """A PostgreSQL database through a psycopg pool.

    Args:
        url: A libpq URL; the password belongs in ``PGPASSWORD`` or ``~/.pgpass``.
        what: What lives there, for messages.
        lock_name: The advisory lock that serialises this log's writers across processes.
        max_connections: Size of the pool.
    """

    json_type = "JSONB"
    blob_type = "BYTEA"

    def __init__(self, url: str, *, what: str, lock_name: str, max_connections: int = 4) -> None:
        from agentlab.adapters.postgres_store import connect_pool, redact_url  # noqa: PLC0415

        self.url = redact_url(url)
        self._what = what
        self._lock_name = lock_name
        self._pool: Any = connect_pool(url, max_connections=max_connections)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A pooled connection inside a transaction."""
        import psycopg  # noqa: PLC0415 - the postgres extra is loaded by connect_pool already

        pool = self._pool
        if pool is None:
            raise StoreClosed(f"{self.url}: the {self._what} is closed", hint="open it again")
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise BackendError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def sql(self, statement: str) -> str:
        """Psycopg's ``%s`` placeholders."""
        return statement.replace("?", "%s")

    def serialise(self, conn: Any) -> None:
        """A transaction-scoped advisory lock: one writer of this log at a time."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self._lock_name])

    def append_only(self, table: str) -> str:
        """A trigger refusing UPDATE, DELETE and TRUNCATE on ``table``."""
        return f"""
        CREATE OR REPLACE FUNCTION agentlab_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'agentlab: % is append-only; % refused', TG_TABLE_NAME, TG_OP;
        END $$;
        CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION agentlab_refuse_change();
        """

    def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
