"""The production audit log: a table in PostgreSQL, append-only by trigger.

It can share a database with the event store. Appends take a transaction-scoped advisory
lock, so any number of processes chain their records one after another.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from agentlab.adapters._sql_audit_log import AUDIT_TABLE, SqlAuditLog
from agentlab.adapters.postgres_store import connect_pool, redact_url
from agentlab.core.errors import BackendError, StoreClosed

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - postgres_store raises the helpful error first
    raise ImportError("PostgresAuditLog needs psycopg: pip install 'agentlab[postgres]'") from exc


class PostgresAuditLog(SqlAuditLog):
    """An audit log in a PostgreSQL database.

    Args:
        url: A libpq URL; the password belongs in ``PGPASSWORD`` or ``~/.pgpass``.
        max_connections: Size of the connection pool that threads share.
    """

    MIGRATIONS: ClassVar[list[str]] = [
        AUDIT_TABLE.format(json_type="JSONB")
        + """
        CREATE OR REPLACE FUNCTION agentlab_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'agentlab: % is append-only; % refused', TG_TABLE_NAME, TG_OP;
        END $$;
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION agentlab_refuse_change();
        """
    ]

    def __init__(self, url: str, *, max_connections: int = 4) -> None:
        self.url = redact_url(url)
        self._pool = connect_pool(url, max_connections=max_connections)
        self._migrate()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        pool = self._pool
        if pool is None:
            raise StoreClosed(f"{self.url}: the audit log is closed", hint="open a new one")
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise BackendError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _serialise(self, conn: psycopg.Connection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlab_audit_log'))")

    def close(self) -> None:
        """Close the pool; later calls raise StoreClosed. Closing twice is harmless."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
