"""The embedded default audit log: a DuckDB file of its own (``<home>/audit.duckdb``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import duckdb

from agentlab.adapters._sql_audit_log import AUDIT_TABLE, SqlAuditLog
from agentlab.core.errors import BackendError, StoreClosed


class DuckDBAuditLog(SqlAuditLog):
    """An audit log in a DuckDB file; threads of one process share it through a lock.

    Args:
        path: The database file (created with its folder if missing), or ``":memory:"``.
    """

    MIGRATIONS: ClassVar[list[str]] = [AUDIT_TABLE.format(json_type="JSON")]

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
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreClosed(f"{self.url}: the audit log is closed", hint="open a new one")
            conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def close(self) -> None:
        """Close the file; later calls raise StoreClosed. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
