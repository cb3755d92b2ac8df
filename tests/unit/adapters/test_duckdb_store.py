from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from agentlab.adapters import open_store as open_store_at
from agentlab.adapters.duckdb_store import DuckDBEventStore
from agentlab.store import EventStore
from tests.contracts.event_store import (
    EventStoreContract,
    OpenStore,
    WriteRaw,
    documented_sql,
    record_governed_run,
    started,
)


class TestDuckDBStore(EventStoreContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "store" / "runs.duckdb"

    @pytest.fixture
    def open_store(self, path: Path) -> OpenStore:
        def open_() -> EventStore:
            return open_store_at(f"duckdb://{path}")

        return open_

    @pytest.fixture
    def write_raw(self, path: Path) -> WriteRaw:
        def write(run_id: str, seq: int, kind: str, body: str) -> None:
            with duckdb.connect(str(path)) as conn:
                conn.execute(
                    "INSERT INTO events (run_id, seq, kind, occurred_at, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [run_id, seq, kind, datetime(2026, 1, 1, tzinfo=UTC), body],
                )

        return write

    @pytest.fixture
    def set_schema_version(self, path: Path) -> Callable[[int], None]:
        def set_version(version: int) -> None:
            with duckdb.connect(str(path)) as conn:
                conn.execute(
                    "UPDATE agentlab_meta SET value = ? WHERE key = 'schema_version'",
                    [str(version)],
                )

        return set_version


def test_the_url_of_a_duckdb_store_opens_the_same_file(tmp_path: Path) -> None:
    with DuckDBEventStore(tmp_path / "a.duckdb") as first:
        first.append([started("run_1")])
        url = first.url
    with open_store_at(url) as again:
        assert again.run_ids() == ["run_1"]


def test_the_documented_query_counts_side_effects_per_tool(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    with DuckDBEventStore(path) as store:
        record_governed_run(store)
    with duckdb.connect(str(path)) as conn:
        assert conn.execute(documented_sql()).fetchall() == [("create_purchase_order", 1)]
