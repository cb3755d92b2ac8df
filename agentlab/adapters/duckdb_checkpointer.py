"""A LangGraph checkpointer in a DuckDB file: the embedded twin of LangGraph's Postgres one.

A graph compiled with a checkpointer saves its state after every step, so a run that waits
for a human's approval (``interrupt()``) can be resumed by another process after a restart.
The tables follow LangGraph's Postgres saver (``checkpoints``, ``checkpoint_blobs``,
``checkpoint_writes``), so the same SQL sizes and prunes both; values are kept as LangGraph's
serializer writes them (``serde.dumps_typed``), exactly as its in-memory saver keeps them.

DuckDB allows one writing process per file; the file may be the event store's. Every call
holds the :class:`~agentlab.adapters._databases.DuckDBFile` lock; the async methods run the
same code on a worker thread, so a graph's event loop is never blocked by the file.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentlab.adapters._databases import DuckDBFile
from agentlab.adapters._schema import apply_migrations

SCHEMA_KEY = "checkpoint_schema_version"

_SELECT = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
    "type, checkpoint, metadata_type, metadata FROM checkpoints"
)


class DuckDBCheckpointSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints, channel values and pending writes in a DuckDB file.

    Use it as the graph's ``checkpointer``; :func:`agentlab.adapters.open_checkpointer`
    opens one from a ``duckdb://`` URL and closes it afterwards.

    Args:
        path: The database file (created with its folder if missing), or ``":memory:"``.
        serde: LangGraph's serializer; its ``JsonPlusSerializer`` by default.

    Raises:
        SchemaTooNew: the file's checkpoint tables were written by a newer agentlab.
        BackendError: the file cannot be opened (another process may be writing to it).
    """

    MIGRATIONS: ClassVar[list[str]] = [
        # 1: LangGraph's three tables. Append only: a position in this list is a version.
        """
        CREATE TABLE checkpoints (
            thread_id VARCHAR NOT NULL,
            checkpoint_ns VARCHAR NOT NULL DEFAULT '',
            checkpoint_id VARCHAR NOT NULL,
            parent_checkpoint_id VARCHAR,
            type VARCHAR NOT NULL,
            checkpoint BLOB NOT NULL,
            metadata_type VARCHAR NOT NULL,
            metadata BLOB NOT NULL,
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
        );
        CREATE TABLE checkpoint_blobs (
            thread_id VARCHAR NOT NULL,
            checkpoint_ns VARCHAR NOT NULL DEFAULT '',
            channel VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            blob BLOB,
            PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
        );
        CREATE TABLE checkpoint_writes (
            thread_id VARCHAR NOT NULL,
            checkpoint_ns VARCHAR NOT NULL DEFAULT '',
            checkpoint_id VARCHAR NOT NULL,
            task_id VARCHAR NOT NULL,
            idx INTEGER NOT NULL,
            channel VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            blob BLOB NOT NULL,
            task_path VARCHAR NOT NULL DEFAULT '',
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
        );
        """,
    ]

    def __init__(self, path: str | Path, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self._db = DuckDBFile(path, what="checkpointer")
        self.path, self.url = self._db.path, self._db.url
        try:
            with self._db.transaction() as conn:
                apply_migrations(conn, key=SCHEMA_KEY, migrations=self.MIGRATIONS, url=self.url)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the file; later calls raise StoreClosed. Closing twice is harmless."""
        self._db.close()

    def __enter__(self) -> DuckDBCheckpointSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the thread's newest in its namespace.

        Args:
            config: ``configurable`` holds ``thread_id``, and optionally ``checkpoint_ns``
                (``""`` by default) and ``checkpoint_id``.

        Returns:
            The checkpoint with its channel values, metadata, parent and pending writes;
            None if there is none.
        """
        configurable = config["configurable"]
        args: list[Any] = [str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")]
        where = " WHERE thread_id = ? AND checkpoint_ns = ?"
        if checkpoint_id := get_checkpoint_id(config):
            where += " AND checkpoint_id = ?"
            args.append(checkpoint_id)
        with self._db.locked() as conn:
            row = conn.execute(
                _SELECT + where + " ORDER BY checkpoint_id DESC LIMIT 1", args
            ).fetchone()
            return None if row is None else self._load(conn, row)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints, newest first.

        Args:
            config: Only this ``thread_id`` (and ``checkpoint_ns`` and ``checkpoint_id``,
                where given); None lists every thread.
            filter: Only checkpoints whose metadata has each of these keys with this value.
            before: Only checkpoints older than this one.
            limit: At most this many.

        Yields:
            Checkpoint tuples, as :meth:`get_tuple` gives them.
        """
        yield from self._list(config, filter=filter, before=before, limit=limit)

    def _list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> list[CheckpointTuple]:
        wheres: list[str] = []
        args: list[Any] = []
        if config:
            configurable = config["configurable"]
            wheres.append("thread_id = ?")
            args.append(str(configurable["thread_id"]))
            if (checkpoint_ns := configurable.get("checkpoint_ns")) is not None:
                wheres.append("checkpoint_ns = ?")
                args.append(checkpoint_ns)
            if checkpoint_id := get_checkpoint_id(config):
                wheres.append("checkpoint_id = ?")
                args.append(checkpoint_id)
        if before is not None and (before_id := get_checkpoint_id(before)):
            wheres.append("checkpoint_id < ?")
            args.append(before_id)
        query = _SELECT + (" WHERE " + " AND ".join(wheres) if wheres else "")
        query += " ORDER BY checkpoint_id DESC, thread_id, checkpoint_ns"
        if limit is not None and not filter:
            query += " LIMIT ?"
            args.append(max(int(limit), 0))
        found: list[CheckpointTuple] = []
        with self._db.locked() as conn:
            # The metadata is LangGraph's serialized form, so the filter is applied here.
            for row in conn.execute(query, args).fetchall():
                if limit is not None and len(found) >= limit:
                    break
                metadata = self.serde.loads_typed((row[6], row[7]))
                if filter and any(metadata.get(k) != v for k, v in filter.items()):
                    continue
                found.append(self._load(conn, row, metadata=metadata))
        return found

    def _load(
        self, conn: duckdb.DuckDBPyConnection, row: tuple[Any, ...], *, metadata: Any = None
    ) -> CheckpointTuple:
        thread_id, checkpoint_ns, checkpoint_id, parent_id, kind, blob = row[:6]
        checkpoint: Checkpoint = self.serde.loads_typed((kind, blob))
        versions = checkpoint["channel_versions"]
        values: dict[str, Any] = {}
        if versions:
            channels = [str(c) for c in versions]
            blobs = conn.execute(
                "SELECT b.channel, b.type, b.blob FROM checkpoint_blobs b "
                "JOIN (SELECT unnest(?::VARCHAR[]) AS channel, unnest(?::VARCHAR[]) AS version) v"
                " ON b.channel = v.channel AND b.version = v.version "
                "WHERE b.thread_id = ? AND b.checkpoint_ns = ?",
                [channels, [str(versions[c]) for c in channels], thread_id, checkpoint_ns],
            ).fetchall()
            values = {
                channel: self.serde.loads_typed((kind_, value))
                for channel, kind_, value in blobs
                if kind_ != "empty"
            }
        writes = conn.execute(
            "SELECT task_id, channel, type, blob FROM checkpoint_writes "
            "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? "
            "ORDER BY task_path, task_id, idx",  # LangGraph's writes_sort_key
            [thread_id, checkpoint_ns, checkpoint_id],
        ).fetchall()
        return CheckpointTuple(
            config=_config(thread_id, checkpoint_ns, checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self.serde.loads_typed((row[6], row[7])) if metadata is None else metadata,
            parent_config=_config(thread_id, checkpoint_ns, parent_id) if parent_id else None,
            pending_writes=[
                (task_id, channel, self.serde.loads_typed((kind_, value)))
                for task_id, channel, kind_, value in writes
            ],
        )

    # -- writes --------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint, and the values of the channels that changed since its parent.

        Args:
            config: ``thread_id``, ``checkpoint_ns``, and the parent's ``checkpoint_id``.
            checkpoint: The checkpoint, with its channel values.
            metadata: Kept with it; :meth:`list` filters on it.
            new_versions: The channels whose values are new in this checkpoint.

        Returns:
            The config naming the saved checkpoint.
        """
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        copy = checkpoint.copy()
        values: dict[str, Any] = copy.pop("channel_values")  # type: ignore[misc]
        blobs = [
            (
                channel,
                str(version),
                *(
                    self.serde.dumps_typed(values[channel])
                    if channel in values
                    else ("empty", None)
                ),
            )
            for channel, version in new_versions.items()
        ]
        kind, body = self.serde.dumps_typed(copy)
        metadata_kind, metadata_body = self.serde.dumps_typed(
            get_checkpoint_metadata(config, metadata)
        )
        with self._db.transaction() as conn:
            if blobs:
                columns = [list(column) for column in zip(*blobs, strict=True)]
                conn.execute(
                    "INSERT INTO checkpoint_blobs SELECT ?, ?, unnest(?::VARCHAR[]), "
                    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BLOB[]) "
                    "ON CONFLICT DO NOTHING",
                    [thread_id, checkpoint_ns, *columns],
                )
            conn.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
                "SET type = excluded.type, checkpoint = excluded.checkpoint, "
                "metadata_type = excluded.metadata_type, metadata = excluded.metadata",
                [
                    thread_id,
                    checkpoint_ns,
                    checkpoint["id"],
                    configurable.get("checkpoint_id"),
                    kind,
                    body,
                    metadata_kind,
                    metadata_body,
                ],
            )
        return _config(thread_id, checkpoint_ns, checkpoint["id"])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes against the checkpoint ``config`` names.

        A task's ordinary writes are kept once (a retried task does not replace them); its
        special writes (error, interrupt, resume, scheduled) replace earlier ones.

        Args:
            config: ``thread_id``, ``checkpoint_ns`` and ``checkpoint_id``.
            writes: (channel, value) pairs.
            task_id: The task that wrote them.
            task_path: The task's path, which orders writes within a step.
        """
        configurable = config["configurable"]
        key = [
            str(configurable["thread_id"]),
            configurable.get("checkpoint_ns", ""),
            configurable["checkpoint_id"],
            task_id,
        ]
        rows = [
            (WRITES_IDX_MAP.get(channel, idx), channel, *self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        ]
        with self._db.transaction() as conn:
            for idx, channel, kind, blob in rows:
                conn.execute(
                    "INSERT INTO checkpoint_writes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    + (
                        "ON CONFLICT DO UPDATE SET channel = excluded.channel, "
                        "type = excluded.type, blob = excluded.blob, "
                        "task_path = excluded.task_path"
                        if idx < 0
                        else "ON CONFLICT DO NOTHING"
                    ),
                    [*key, idx, channel, kind, blob, task_path],
                )

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, value and write of a thread.

        Args:
            thread_id: The thread to delete.
        """
        with self._db.transaction() as conn:
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", [str(thread_id)])

    def prune_thread(self, thread_id: str, *, keep_last: int) -> None:
        """Keep the newest ``keep_last`` checkpoints of each namespace of a finished thread.

        Deletes the older checkpoints, every write not against a kept one, and every value
        no kept checkpoint uses; the oldest kept checkpoint loses its parent link.

        Args:
            thread_id: A thread whose run has finished (nothing writes to it meanwhile).
            keep_last: How many checkpoints to keep per namespace; 0 deletes the thread.
        """
        if keep_last <= 0:
            self.delete_thread(thread_id)
            return
        thread_id = str(thread_id)
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT checkpoint_ns, checkpoint_id, type, checkpoint FROM ("
                "  SELECT *, row_number() OVER ("
                "    PARTITION BY checkpoint_ns ORDER BY checkpoint_id DESC) AS n"
                "  FROM checkpoints WHERE thread_id = ?"
                ") WHERE n <= ?",
                [thread_id, keep_last],
            ).fetchall()
            kept = [(ns, checkpoint_id) for ns, checkpoint_id, _, _ in rows]
            used = sorted(
                {
                    (ns, str(channel), str(version))
                    for ns, _, kind, body in rows
                    for channel, version in self.serde.loads_typed((kind, body))[
                        "channel_versions"
                    ].items()
                }
            )
            kept_table = "(SELECT unnest(?::VARCHAR[]) AS ns, unnest(?::VARCHAR[]) AS id) k"
            kept_args = [[ns for ns, _ in kept], [i for _, i in kept]]
            for table in ("checkpoint_writes", "checkpoints"):
                conn.execute(
                    f"DELETE FROM {table} t WHERE thread_id = ? AND NOT EXISTS ("
                    f"SELECT 1 FROM {kept_table} "
                    "WHERE k.ns = t.checkpoint_ns AND k.id = t.checkpoint_id)",
                    [thread_id, *kept_args],
                )
            conn.execute(
                "UPDATE checkpoints t SET parent_checkpoint_id = NULL "
                "WHERE thread_id = ? AND parent_checkpoint_id IS NOT NULL AND NOT EXISTS ("
                f"SELECT 1 FROM {kept_table} "
                "WHERE k.ns = t.checkpoint_ns AND k.id = t.parent_checkpoint_id)",
                [thread_id, *kept_args],
            )
            conn.execute(
                "DELETE FROM checkpoint_blobs b WHERE thread_id = ? AND NOT EXISTS ("
                "SELECT 1 FROM (SELECT unnest(?::VARCHAR[]) AS ns, unnest(?::VARCHAR[]) AS ch,"
                " unnest(?::VARCHAR[]) AS v) u "
                "WHERE u.ns = b.checkpoint_ns AND u.ch = b.channel AND u.v = b.version)",
                [thread_id, *([list(c) for c in zip(*used, strict=True)] or [[], [], []])],
            )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """LangGraph's prune: ``keep_latest`` keeps each namespace's newest checkpoint.

        Args:
            thread_ids: The threads to prune; their runs must have finished.
            strategy: ``"keep_latest"`` or ``"delete"`` (every checkpoint of the threads).

        Raises:
            TypeError: ``thread_ids`` is one str.
            ValueError: an unknown strategy.
        """
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids is a sequence of thread ids, not one str")
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}; use keep_latest or delete")
        for thread_id in thread_ids:
            self.prune_thread(thread_id, keep_last=1 if strategy == "keep_latest" else 0)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The version after ``current``: a zero-padded counter and a random tail, as strings.

        Args:
            current: The channel's version now, or None for a new channel.
            channel: Unused; LangGraph passes it for compatibility.
        """
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        # The tail orders two versions with one counter; it needs no seed (not replayed).
        return f"{current_v + 1:032}.{random.random():016}"

    # -- async twins: the same code on a worker thread, under the same lock --------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """:meth:`get_tuple`, without blocking the event loop."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """:meth:`list`, without blocking the event loop."""
        found = await asyncio.to_thread(
            self._list, config, filter=filter, before=before, limit=limit
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """:meth:`put`, without blocking the event loop."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """:meth:`put_writes`, without blocking the event loop."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """:meth:`delete_thread`, without blocking the event loop."""
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def aprune_thread(self, thread_id: str, *, keep_last: int) -> None:
        """:meth:`prune_thread`, without blocking the event loop."""
        await asyncio.to_thread(self.prune_thread, thread_id, keep_last=keep_last)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """:meth:`prune`, without blocking the event loop."""
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }
