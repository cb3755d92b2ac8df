"""Backends for the ports, chosen by URL. The only home of duckdb, psycopg and the like."""

from __future__ import annotations

from pathlib import Path

from agentlab.core.errors import ConfigError
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
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"store URL {url!r} has no scheme", hint="use one of: " + ", ".join(STORE_URL_FORMS)
        )
    if scheme == "memory":
        return MemoryEventStore()
    if scheme == "duckdb":
        from agentlab.adapters.duckdb_store import DuckDBEventStore  # noqa: PLC0415 - load on use

        if not rest:
            raise ConfigError(f"store URL {url!r} names no file", hint="e.g. duckdb:///runs.duckdb")
        if must_exist and rest != ":memory:" and not Path(rest).is_file():
            raise ConfigError(
                f"no event store at {rest}",
                hint="record a run first (agentlab demo), or pass --store / AGENTLAB_STORE_URL",
            )
        return DuckDBEventStore(rest)
    if scheme in ("postgresql", "postgres"):
        # Imported on use: psycopg is an optional extra.
        from agentlab.adapters.postgres_store import PostgresEventStore  # noqa: PLC0415

        return PostgresEventStore(url)
    raise ConfigError(
        f"store URL scheme {scheme!r} is not known",
        hint="use one of: " + ", ".join(STORE_URL_FORMS),
    )
