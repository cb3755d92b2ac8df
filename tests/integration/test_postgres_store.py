from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest

from agentlab.adapters import open_store
from agentlab.adapters.postgres_store import redact_url
from agentlab.core.errors import BackendError
from agentlab.store import EventStore
from tests.contracts.event_store import (
    EventStoreContract,
    OpenStore,
    WriteRaw,
    documented_sql,
    record_governed_run,
    started,
)


class TestPostgresStore(EventStoreContract):
    @pytest.fixture
    def open_store(self, pg_url: str) -> OpenStore:
        def open_() -> EventStore:
            return open_store(pg_url)

        return open_

    @pytest.fixture
    def write_raw(self, pg_url: str) -> WriteRaw:
        def write(run_id: str, seq: int, kind: str, body: str) -> None:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO events (run_id, seq, kind, occurred_at, body) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [run_id, seq, kind, datetime(2026, 1, 1, tzinfo=UTC), body],
                )

        return write

    @pytest.fixture
    def set_schema_version(self, pg_url: str) -> Callable[[int], None]:
        def set_version(version: int) -> None:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE agentlab_meta SET value = %s WHERE key = 'schema_version'",
                    [str(version)],
                )

        return set_version


def test_the_database_itself_refuses_to_change_or_delete_events(pg_url: str) -> None:
    with open_store(pg_url) as store:
        store.append([started("run_1")])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_two_stores_opened_together_migrate_once(pg_url: str) -> None:
    with open_store(pg_url) as first, open_store(pg_url) as second:
        first.append([started("run_1")])
        assert second.run_ids() == ["run_1"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM agentlab_meta").fetchall() == [("1",)]


def test_passwords_never_appear_in_the_store_url() -> None:
    assert (
        redact_url("postgresql://agent:s3cret@db:5432/runs")
        == "postgresql://agent:***@db:5432/runs"
    )
    assert redact_url("postgresql://agent@db/runs") == "postgresql://agent@db/runs"


def test_an_unreachable_server_is_a_backend_error_without_the_password() -> None:
    with pytest.raises(BackendError, match="cannot connect") as caught:
        open_store("postgresql://agent:s3cret@127.0.0.1:1/runs")
    assert "s3cret" not in str(caught.value)
    assert "agent:***@127.0.0.1:1" in str(caught.value)


def test_the_documented_query_counts_side_effects_per_tool(pg_url: str) -> None:
    with open_store(pg_url) as store:
        record_governed_run(store)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(documented_sql()).fetchall() == [("create_purchase_order", 1)]
