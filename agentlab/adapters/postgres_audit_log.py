"""The production audit log: a table in PostgreSQL, append-only by trigger.

It can share a database with the event store. Appends take a transaction-scoped advisory
lock, so any number of processes chain their records one after another.
"""

from __future__ import annotations

from agentlab.adapters._databases import PostgresDatabase
from agentlab.adapters._sql_audit_log import SqlAuditLog


class PostgresAuditLog(SqlAuditLog):
    """An audit log in a PostgreSQL database.

    Args:
        url: A libpq URL; the password belongs in ``PGPASSWORD`` or ``~/.pgpass``.
        max_connections: Size of the connection pool that threads share.
    """

    def __init__(self, url: str, *, max_connections: int = 4) -> None:
        super().__init__(
            PostgresDatabase(
                url,
                what="audit log",
                lock_name="agentlab_audit_log",
                max_connections=max_connections,
            )
        )
