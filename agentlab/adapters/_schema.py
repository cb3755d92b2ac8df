"""Schema versions for the SQL backends: one row per component in ``agentlab_meta``.

The event store, the audit log and the conversation log may share a database (always so on
PostgreSQL); each keeps its own version under its own key, and its own append-only list of
migrations: a migration's position in the list is the version it brings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentlab.core.errors import SchemaTooNew


def apply_migrations(
    conn: Any,
    *,
    key: str,
    migrations: Sequence[str],
    url: str,
    sql: Callable[[str], str] = lambda statement: statement,
) -> None:
    """Bring one component's tables up to ``len(migrations)``, inside the caller's transaction.

    Args:
        conn: A DB-API connection inside a transaction.
        key: The component's row in ``agentlab_meta`` (``schema_version``, ...).
        migrations: SQL scripts, append only.
        url: For messages.
        sql: Rewrites ``?`` placeholders for the driver.

    Raises:
        SchemaTooNew: the database was written by a newer agentlab.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS agentlab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    )
    row = conn.execute(sql("SELECT value FROM agentlab_meta WHERE key = ?"), [key]).fetchone()
    version = int(row[0]) if row else 0
    if version > len(migrations):
        raise SchemaTooNew(
            f"{url}: {key.replace('_', ' ')} {version}, but this agentlab knows up to "
            f"{len(migrations)}",
            hint="upgrade agentlab (pip install -U agentlab), or open another store",
        )
    for migration in migrations[version:]:
        conn.execute(migration)
    if version < len(migrations):
        conn.execute(
            sql(
                "INSERT INTO agentlab_meta VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            [key, str(len(migrations))],
        )
