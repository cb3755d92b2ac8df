"""LangGraph checkpointers on the event store's backends, chosen by URL, and their pruning.

A graph that waits for a human's approval stops at ``interrupt()``; its checkpointer keeps
the run's graph state, so another process can resume it after a restart. The checkpoint
tables grow with every step of every run: :func:`prune_finished` deletes what a finished
run no longer needs (docs/checkpoints.md says when to call it).

LangGraph is imported on use, so importing :mod:`agentlab.adapters` stays fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

from agentlab.core.errors import BackendError, ConfigError, MissingDependency

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.checkpoint.memory import InMemorySaver

CHECKPOINTER_URL_FORMS = (
    "memory",
    "duckdb:///abs/path/checkpoints.duckdb",
    "duckdb://relative/checkpoints.duckdb",
    "postgresql://user@host:5432/dbname",
)

# Serialises the table set-up of processes that start at once (LangGraph's own is not).
_SETUP_LOCK = "agentlab_checkpointer_setup"
_SETUP_POLL_S = 0.05


class FernetCipher:
    """LangGraph's ``CipherProtocol`` over Fernet (AES-128-CBC with HMAC-SHA256).

    The same key format as the conversation log's, so one key protects both: a checkpoint
    holds an open run's whole conversation.
    """

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "the checkpoint key is not a Fernet key (32 url-safe base64-encoded bytes)",
                hint="use the conversation log's key, or Fernet.generate_key()",
            ) from exc

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        """Encrypt ``plaintext``; the name says which cipher to decrypt with."""
        return "fernet", self._fernet.encrypt(plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        """Decrypt what :meth:`encrypt` made.

        Raises:
            ConfigError: another cipher wrote it, or another key.
        """
        if ciphername != "fernet":
            raise ConfigError(f"a checkpoint was encrypted with {ciphername!r}, not fernet")
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise ConfigError(
                "a checkpoint was encrypted with another key",
                hint="resume with the key the run was started with",
            ) from exc


def encrypted_serde(key: bytes) -> EncryptedSerializer:
    """LangGraph's serializer, encrypting every checkpointed value with ``key``."""
    return EncryptedSerializer(FernetCipher(key))


@asynccontextmanager
async def open_checkpointer(
    url: str, *, max_connections: int = 4, key: bytes | None = None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the checkpointer at ``url`` for ``graph.compile(checkpointer=...)``.

    Example::

        async with open_checkpointer("duckdb:///runs/checkpoints.duckdb") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": run_id}})

    Args:
        url: ``memory`` (LangGraph's in-memory saver: nothing survives the process);
            ``duckdb://`` and a file path, absolute (``duckdb:///data/checkpoints.duckdb``)
            or relative, and may be the event store's file; or ``postgresql://...``
            (LangGraph's ``AsyncPostgresSaver``; needs the ``postgres`` extra), which may be
            the event store's database. Put a password in ``PGPASSWORD`` or ``~/.pgpass``.
        max_connections: For PostgreSQL, the size of the connection pool.
        key: A Fernet key: every checkpointed value (an open run's messages, tool results
            included) is then stored encrypted. Without it values are stored as they are.

    Yields:
        The checkpointer; it is closed when the block ends.

    Raises:
        ConfigError: the URL is not one of the forms above.
        MissingDependency: a ``postgresql://`` URL without the ``postgres`` extra.
        BackendError: the database cannot be reached or opened.
        SchemaTooNew: the DuckDB file's checkpoint tables come from a newer agentlab.
    """
    scheme, rest = _parse(url)
    serde = encrypted_serde(key) if key is not None else None
    if scheme == "memory":
        from langgraph.checkpoint.memory import InMemorySaver  # noqa: PLC0415

        yield InMemorySaver(serde=serde)
        return
    if scheme == "duckdb":
        from agentlab.adapters.duckdb_checkpointer import DuckDBCheckpointSaver  # noqa: PLC0415

        saver = await asyncio.to_thread(DuckDBCheckpointSaver, rest, serde=serde)
        try:
            yield saver
        finally:
            saver.close()
        return
    async with _open_postgres(url, max_connections=max_connections, serde=serde) as pg_saver:
        yield pg_saver


async def prune_finished(
    saver: BaseCheckpointSaver[Any], thread_id: str, *, keep_last: int = 0
) -> None:
    """Delete what a finished run's thread no longer needs from the checkpoint tables.

    Call it once the run has finished (nothing writes to the thread meanwhile). With
    ``keep_last=0`` the thread's checkpoints, channel values and pending writes all go;
    otherwise each namespace keeps its newest ``keep_last`` checkpoints with their writes
    and the values they use, and the oldest kept one loses its parent link. Keeping some
    is not for graphs that use LangGraph's (beta) ``DeltaChannel``, whose values are
    rebuilt from older checkpoints.

    Args:
        saver: A checkpointer from :func:`open_checkpointer` (or one of the same kinds).
        thread_id: The finished run's thread.
        keep_last: How many of the newest checkpoints to keep per namespace.

    Raises:
        ConfigError: ``keep_last`` is negative, or is positive for a kind of checkpointer
            this function cannot prune partly (``keep_last=0`` works with any).
    """
    if keep_last < 0:
        raise ConfigError(
            f"keep_last={keep_last} is negative",
            hint="0 deletes the thread's checkpoints; N keeps the newest N",
        )
    if keep_last == 0:
        await saver.adelete_thread(thread_id)
        return
    from langgraph.checkpoint.memory import InMemorySaver  # noqa: PLC0415

    from agentlab.adapters.duckdb_checkpointer import DuckDBCheckpointSaver  # noqa: PLC0415

    if isinstance(saver, DuckDBCheckpointSaver):
        await saver.aprune_thread(thread_id, keep_last=keep_last)
    elif isinstance(saver, InMemorySaver):
        _prune_memory(saver, str(thread_id), keep_last)
    elif _is_async_postgres(saver):
        await _prune_postgres(saver, str(thread_id), keep_last)
    else:
        raise ConfigError(
            f"cannot keep the newest checkpoints of a {type(saver).__name__}",
            hint="use keep_last=0 (deletes the thread), or a saver from open_checkpointer",
        )


def _parse(url: str) -> tuple[str, str]:
    """(scheme, rest) of a checkpointer URL, with ``postgres`` spelled ``postgresql``."""
    if url in ("memory", "memory://"):
        return "memory", ""
    scheme, sep, rest = url.partition("://")
    if scheme == "duckdb" and sep:
        if not rest:
            raise ConfigError(
                f"checkpointer URL {url!r} names no file",
                hint="e.g. duckdb:///runs/checkpoints.duckdb",
            )
        return "duckdb", rest
    if scheme in ("postgresql", "postgres") and sep:
        return "postgresql", rest
    raise ConfigError(
        f"checkpointer URL {_masked(url)!r} is not one agentlab knows",
        hint="use one of: " + ", ".join(CHECKPOINTER_URL_FORMS),
    )


def _masked(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL at all (a bad port, brackets): nothing to mask safely
        return url.split("@", 1)[-1] if "@" in url else url
    if password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@asynccontextmanager
async def _open_postgres(
    url: str, *, max_connections: int, serde: SerializerProtocol | None
) -> AsyncIterator[Any]:
    try:
        import psycopg  # noqa: PLC0415 - the postgres extra is optional
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # noqa: PLC0415
        from psycopg.rows import dict_row  # noqa: PLC0415
        from psycopg_pool import AsyncConnectionPool  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependency(
            "the PostgreSQL checkpointer needs psycopg, psycopg-pool and "
            "langgraph-checkpoint-postgres",
            hint="pip install 'agentlab[postgres]'",
        ) from exc

    try:
        # One plain connection first: it says why a URL fails, and it holds the set-up lock.
        setup_conn = await psycopg.AsyncConnection.connect(url, connect_timeout=10, autocommit=True)
    except psycopg.Error as exc:
        raise BackendError(
            f"{_masked(url)}: cannot connect: {str(exc).strip()}",
            hint="is the server up, and does the database exist?",
        ) from exc
    # LangGraph's saver wants autocommit, dict rows, and no prepared statements (poolers).
    pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_connections,
        open=False,
        timeout=30,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    try:
        async with setup_conn:
            await pool.open(wait=True)
            saver = AsyncPostgresSaver(pool, serde=serde)  # type: ignore[arg-type]
            await _take_setup_lock(setup_conn)
            await saver.setup()
            await setup_conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [_SETUP_LOCK])
        yield saver
    except psycopg.OperationalError as exc:
        raise BackendError(f"{_masked(url)}: {type(exc).__name__}: {exc}") from exc
    finally:
        await pool.close()


async def _take_setup_lock(conn: Any) -> None:
    """Wait for the set-up lock by polling, never inside a statement.

    LangGraph's set-up runs ``CREATE INDEX CONCURRENTLY``, which waits for every statement
    in progress in the database; a second process blocked in ``pg_advisory_lock`` would be
    one, and the two would wait for each other for ever. Between polls this connection
    runs nothing (it is in autocommit), so the first process's set-up can finish.
    """
    while True:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [_SETUP_LOCK])
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return
        await asyncio.sleep(_SETUP_POLL_S)


def _is_async_postgres(saver: object) -> bool:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # noqa: PLC0415
    except ImportError:  # without the extra there is no such saver
        return False
    return isinstance(saver, AsyncPostgresSaver)


def _prune_memory(saver: InMemorySaver, thread_id: str, keep_last: int) -> None:
    kept_ids: dict[str, set[str]] = {}
    used: set[tuple[str, str, Any]] = set()
    for ns, checkpoints in saver.storage.get(thread_id, {}).items():
        kept = set(sorted(checkpoints, reverse=True)[:keep_last])
        kept_ids[ns] = kept
        for checkpoint_id in list(checkpoints):
            if checkpoint_id not in kept:
                del checkpoints[checkpoint_id]
                continue
            body, metadata, parent_id = checkpoints[checkpoint_id]
            if parent_id not in kept:
                checkpoints[checkpoint_id] = (body, metadata, None)
            versions = saver.serde.loads_typed(body)["channel_versions"]
            used.update((ns, channel, version) for channel, version in versions.items())
    for key in [k for k in saver.writes if k[0] == thread_id]:
        if key[2] not in kept_ids.get(key[1], ()):
            del saver.writes[key]
    for key in [k for k in saver.blobs if k[0] == thread_id]:
        if key[1:] not in used:
            del saver.blobs[key]


# Each runs in one transaction; the kept checkpoints are the newest N of each namespace.
_POSTGRES_PRUNE = (
    """
    WITH kept AS (
        SELECT checkpoint_ns, checkpoint_id FROM (
            SELECT checkpoint_ns, checkpoint_id, row_number() OVER (
                PARTITION BY checkpoint_ns ORDER BY checkpoint_id DESC) AS n
            FROM checkpoints WHERE thread_id = %(thread_id)s
        ) ranked WHERE n <= %(keep_last)s
    )
    DELETE FROM {table} t WHERE t.thread_id = %(thread_id)s AND NOT EXISTS (
        SELECT 1 FROM kept k
        WHERE k.checkpoint_ns = t.checkpoint_ns AND k.checkpoint_id = t.checkpoint_id)
    """,
    """
    UPDATE checkpoints c SET parent_checkpoint_id = NULL
    WHERE c.thread_id = %(thread_id)s AND c.parent_checkpoint_id IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM checkpoints p
        WHERE p.thread_id = c.thread_id AND p.checkpoint_ns = c.checkpoint_ns
        AND p.checkpoint_id = c.parent_checkpoint_id)
    """,
    """
    DELETE FROM checkpoint_blobs b WHERE b.thread_id = %(thread_id)s AND NOT EXISTS (
        SELECT 1 FROM checkpoints c
        CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') v
        WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
        AND v.key = b.channel AND v.value = b.version)
    """,
)


async def _prune_postgres(saver: Any, thread_id: str, keep_last: int) -> None:
    from psycopg_pool import AsyncConnectionPool  # noqa: PLC0415

    params = {"thread_id": thread_id, "keep_last": keep_last}
    async with saver.lock:  # the saver's own lock, as its methods take it
        if isinstance(saver.conn, AsyncConnectionPool):
            async with saver.conn.connection() as conn, conn.transaction():
                await _run_prune(conn, params)
        else:
            if saver.pipe is not None:
                await saver.pipe.sync()
            async with saver.conn.transaction():
                await _run_prune(saver.conn, params)


async def _run_prune(conn: Any, params: dict[str, Any]) -> None:
    first, *rest = _POSTGRES_PRUNE
    # Writes first, while the checkpoints they were written against are still there.
    for table in ("checkpoint_writes", "checkpoints"):
        await conn.execute(first.format(table=table), params)
    for statement in rest:
        await conn.execute(statement, params)
