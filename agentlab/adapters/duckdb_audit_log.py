"""The embedded default audit log: a DuckDB file of its own (``<home>/audit.duckdb``)."""

from __future__ import annotations

from pathlib import Path

from agentlab.adapters._databases import DuckDBFile
from agentlab.adapters._sql_audit_log import SqlAuditLog


class DuckDBAuditLog(SqlAuditLog):
    """An audit log in a DuckDB file; threads of one process share it through a lock.

    DuckDB has no triggers: an edit made straight to the file is found by the hash chain.

    Args:
        path: The database file (created with its folder if missing), or ``":memory:"``.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(DuckDBFile(path, what="audit log"))
