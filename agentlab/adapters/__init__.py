"""Backends for the ports, chosen by URL. The only home of duckdb, psycopg and the like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentlab.adapters.checkpointers import CHECKPOINTER_URL_FORMS as CHECKPOINTER_URL_FORMS
from agentlab.adapters.checkpointers import open_checkpointer as open_checkpointer
from agentlab.adapters.checkpointers import prune_finished as prune_finished
from agentlab.adapters.openai_chat import OpenAIChatModel as OpenAIChatModel
from agentlab.core.clock import Clock
from agentlab.core.errors import ConfigError
from agentlab.rag.index import VectorIndex
from agentlab.store.audit import AuditLog, MemoryAuditLog
from agentlab.store.conversation import ConversationLog, MemoryConversationLog
from agentlab.store.memory import MemoryEventStore
from agentlab.store.protocol import EventStore

STORE_URL_FORMS = (
    "duckdb:///abs/path/runs.duckdb",
    "duckdb://relative/runs.duckdb",
    "postgresql://user@host:5432/dbname",
    "memory://",
)


def open_store(url: str, *, must_exist: bool = False) -> EventStore:
    """Open the event store at ``url``; close it with ``.close()`` or a ``with`` block.

    Args:
        url: ``duckdb://`` and a file path, absolute (``duckdb:///data/runs.duckdb``) or
            relative (``duckdb://runs.duckdb``); ``duckdb://:memory:`` for a throwaway one;
            ``postgresql://...`` (needs the ``postgres`` extra), or ``memory://``.

        must_exist: Refuse to create a new DuckDB file; for commands that only read.

    Raises:
        ConfigError: the URL's scheme is not one of these, or ``must_exist`` is set and the
            DuckDB file is missing.
    """
    scheme, rest = _parse(url, must_exist=must_exist, what="event store")
    if scheme == "memory":
        return MemoryEventStore()
    if scheme == "duckdb":
        from agentlab.adapters.duckdb_store import DuckDBEventStore  # noqa: PLC0415 - load on use

        return DuckDBEventStore(rest)
    # Imported on use: psycopg is an optional extra.
    from agentlab.adapters.postgres_store import PostgresEventStore  # noqa: PLC0415

    return PostgresEventStore(url)


def open_audit_log(url: str, *, must_exist: bool = False) -> AuditLog:
    """Open the audit log at ``url`` (the same URL forms as :func:`open_store`).

    Raises:
        ConfigError: as for :func:`open_store`.
    """
    scheme, rest = _parse(url, must_exist=must_exist, what="audit log")
    if scheme == "memory":
        return MemoryAuditLog()
    if scheme == "duckdb":
        from agentlab.adapters.duckdb_audit_log import DuckDBAuditLog  # noqa: PLC0415

        return DuckDBAuditLog(rest)
    from agentlab.adapters.postgres_audit_log import PostgresAuditLog  # noqa: PLC0415

    return PostgresAuditLog(url)


def open_conversation_log(url: str, *, key: bytes) -> ConversationLog:
    """Open the encrypted conversation log at ``url`` (the same URL forms as the store).

    Args:
        url: Where the log lives.
        key: The Fernet key (see ``load_or_create_conversation_key``).
    """
    scheme, rest = _parse(url, must_exist=False, what="conversation log")
    if scheme == "memory":
        return MemoryConversationLog(key)
    from agentlab.adapters._sql_conversation_log import (  # noqa: PLC0415
        DuckDBConversationLog,
        PostgresConversationLog,
    )

    if scheme == "duckdb":
        return DuckDBConversationLog(rest, key=key)
    return PostgresConversationLog(url, key=key)


def open_vector_index(
    url: str,
    dimension: int,
    *,
    embedder_name: str | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> VectorIndex:
    """Open the vector index at ``url`` (the same URL forms as :func:`open_store`).

    Args:
        url: ``duckdb://`` and a file (exact cosine; ``memory://`` for a throwaway one), or
            ``postgresql://...`` (pgvector; needs the ``postgres`` extra).
        dimension: The embedder's ``dimension``.
        embedder_name: The embedder's ``name``; an index built with another is refused.
        clock: Decides what has expired (retention); the wall clock by default.
        **options: For PostgreSQL, :class:`~agentlab.adapters.pgvector_index.PgvectorIndex`'s
            (``method="hnsw"``, ``lists``, ``probes``, ...); for both, ``table``.
    """
    scheme, rest = _parse(url, must_exist=False, what="vector index")
    if scheme in ("memory", "duckdb"):
        from agentlab.adapters.duckdb_vector_index import DuckDBVectorIndex  # noqa: PLC0415

        path = ":memory:" if scheme == "memory" else rest
        return DuckDBVectorIndex(
            path, dimension, embedder_name=embedder_name, clock=clock, **options
        )
    from agentlab.adapters.pgvector_index import PgvectorIndex  # noqa: PLC0415

    return PgvectorIndex(url, dimension, embedder_name=embedder_name, clock=clock, **options)


def _parse(url: str, *, must_exist: bool, what: str) -> tuple[str, str]:
    """(scheme, rest) of a backend URL, with ``postgres`` spelled ``postgresql``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"{what} URL {url!r} has no scheme", hint="use one of: " + ", ".join(STORE_URL_FORMS)
        )
    if scheme == "duckdb":
        if not rest:
            raise ConfigError(
                f"{what} URL {url!r} names no file", hint="e.g. duckdb:///runs.duckdb"
            )
        if must_exist and rest != ":memory:" and not Path(rest).is_file():
            raise ConfigError(
                f"no {what} at {rest}",
                hint="record a run first (agentlab demo), or pass the URL explicitly",
            )
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme not in ("memory", "duckdb", "postgresql"):
        raise ConfigError(
            f"{what} URL scheme {scheme!r} is not known",
            hint="use one of: " + ", ".join(STORE_URL_FORMS),
        )
    return scheme, rest
