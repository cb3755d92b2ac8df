"""The conversation log in DuckDB or PostgreSQL: ciphertext, with run, turn and time in clear.

The time is stored in clear (as well as inside the ciphertext) only so that retention can
delete by age in SQL; it is never read back from the column.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Self

from agentlab.adapters._databases import Database, DuckDBFile, PostgresDatabase
from agentlab.adapters._schema import apply_migrations
from agentlab.store.conversation import ConversationTurn, Role, TurnCipher

TURNS_TABLE = """
    CREATE TABLE conversation_turns (
        run_id TEXT NOT NULL,
        turn_no INTEGER NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL,
        ciphertext {blob_type} NOT NULL,
        PRIMARY KEY (run_id, turn_no)
    );
"""


class SqlConversationLog:
    """An encrypted conversation log in a SQL database.

    Args:
        db: The database.
        key: The Fernet key the turns are sealed with.
    """

    def __init__(self, db: Database, *, key: bytes) -> None:
        self._db = db
        self.url = db.url
        try:
            self._cipher = TurnCipher(key, where=db.url)
            with db.transaction() as conn:
                db.serialise(conn)
                apply_migrations(
                    conn,
                    key="conversation_schema_version",
                    migrations=[TURNS_TABLE.format(blob_type=db.blob_type)],
                    url=self.url,
                    sql=db.sql,
                )
        except BaseException:
            db.close()  # do not leave a pool to the garbage collector
            raise

    def append(self, run_id: str, role: Role, text: str, *, at: datetime) -> ConversationTurn:
        """Encrypt and keep one turn; turns of a run are numbered from 0."""
        with self._db.transaction() as conn:
            self._db.serialise(conn)
            (turn_no,) = conn.execute(
                self._db.sql(
                    "SELECT coalesce(max(turn_no) + 1, 0) FROM conversation_turns WHERE run_id = ?"
                ),
                [run_id],
            ).fetchone()
            sealed = self._cipher.seal(run_id, turn_no, role, text, at)
            conn.execute(
                self._db.sql("INSERT INTO conversation_turns VALUES (?, ?, ?, ?)"),
                [sealed.run_id, sealed.turn_no, sealed.at, sealed.ciphertext],
            )
        return ConversationTurn(run_id=run_id, turn_no=turn_no, role=role, text=text, at=at)

    def read(self, run_id: str) -> list[ConversationTurn]:
        """A run's turns, decrypted, in order."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                self._db.sql(
                    "SELECT turn_no, ciphertext FROM conversation_turns WHERE run_id = ? "
                    "ORDER BY turn_no"
                ),
                [run_id],
            ).fetchall()
        return [self._cipher.open(run_id, turn_no, bytes(blob)) for turn_no, blob in rows]

    def purge(self, *, older_than: datetime | None = None, run_id: str | None = None) -> int:
        """Delete turns before ``older_than``, or all of ``run_id``'s (both: both must hold)."""
        if older_than is None and run_id is None:
            return 0
        conditions, params = [], []
        if older_than is not None:
            conditions.append("occurred_at < ?")
            params.append(older_than)
        if run_id is not None:
            conditions.append("run_id = ?")
            params.append(run_id)
        where = " AND ".join(conditions)
        with self._db.transaction() as conn:
            (count,) = conn.execute(
                self._db.sql(f"SELECT count(*) FROM conversation_turns WHERE {where}"), params
            ).fetchone()
            conn.execute(self._db.sql(f"DELETE FROM conversation_turns WHERE {where}"), params)
        return int(count)

    def close(self) -> None:
        """Release the connections; later calls raise StoreClosed."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBConversationLog(SqlConversationLog):
    """The embedded default: its own DuckDB file (``<home>/conversations.duckdb``)."""

    def __init__(self, path: str | Path, *, key: bytes) -> None:
        super().__init__(DuckDBFile(path, what="conversation log"), key=key)


class PostgresConversationLog(SqlConversationLog):
    """A conversation log in PostgreSQL (it may share the database of the event store)."""

    def __init__(self, url: str, *, key: bytes, max_connections: int = 4) -> None:
        db = PostgresDatabase(
            url,
            what="conversation log",
            lock_name="agentlab_conversation_log",
            max_connections=max_connections,
        )
        super().__init__(db, key=key)
