"""The PostgreSQL audit log: the contract, triggers, tampering, and writers in two processes."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest

from agentlab.adapters import open_audit_log
from agentlab.adapters._databases import PostgresDatabase
from agentlab.adapters._schema import apply_migrations
from agentlab.adapters._sql_audit_log import audit_migrations
from agentlab.adapters.postgres_audit_log import PostgresAuditLog
from agentlab.core.clock import TickingClock
from agentlab.core.errors import AuditChainBroken
from agentlab.store.audit import GENESIS_HASH, chain, require_intact_chain, verify_chain
from tests.contracts.audit_log import AuditLogContract, OpenLog, entry


class TestPostgresAuditLog(AuditLogContract):
    @pytest.fixture
    def open_log(self, pg_url: str) -> OpenLog:
        return lambda: PostgresAuditLog(pg_url)


def test_the_database_refuses_updates_deletes_and_truncates(pg_url: str) -> None:
    with open_audit_log(pg_url) as log:
        log.append(entry(0, TickingClock()))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in (
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
    with open_audit_log(pg_url) as log:
        assert [r.actor for r in log.read()] == ["alice"]


def test_tampering_around_the_triggers_is_detected(pg_url: str) -> None:
    clock = TickingClock()
    with open_audit_log(pg_url) as log:
        for n in range(4):
            log.append(entry(n, clock))
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a superuser can disable triggers
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        conn.execute(
            "UPDATE audit_log SET body = jsonb_set(body::jsonb, '{result,total_usd}', '1')::text"
            " WHERE seq = 1"
        )
        conn.execute("DELETE FROM audit_log WHERE seq = 3")
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER ALL")
    with open_audit_log(pg_url) as log:
        check = log.verify()
        assert (check.is_intact, check.first_bad_seq, check.checked) == (False, 1, 3)
        assert "edited" in check.problem
        with pytest.raises(AuditChainBroken, match="broken at record 1"):
            require_intact_chain(log)


def test_a_log_made_with_jsonb_bodies_moves_to_text_bodies(pg_url: str) -> None:
    # Version 1 kept the body as JSONB; lay that schema and one record down as it did.
    db = PostgresDatabase(pg_url, what="audit log", lock_name="agentlab_audit_log")
    first = chain(entry(0, TickingClock()), seq=0, prev_hash=GENESIS_HASH)
    with db.transaction() as conn:
        apply_migrations(
            conn,
            key="audit_schema_version",
            migrations=audit_migrations(db)[:1],
            url=db.url,
            sql=db.sql,
        )
        conn.execute(
            "INSERT INTO audit_log VALUES (0, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                first.at,
                first.run_id,
                first.step_id,
                first.actor,
                first.decision,
                first.tool,
                first.idempotency_key,
                first.model_dump_json(),
                first.prev_hash,
                first.hash,
            ],
        )
    db.close()

    with open_audit_log(pg_url) as log:
        second = log.append(entry(1, TickingClock()))
        assert log.read() == [first, second]
        assert log.verify().is_intact
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT c.data_type, m.value FROM information_schema.columns c, agentlab_meta m"
            " WHERE c.table_name = 'audit_log' AND c.column_name = 'body'"
            " AND m.key = 'audit_schema_version'"
        ).fetchone()
    assert row == ("text", "2")


def _append_many(url: str, worker: int, count: int) -> None:
    clock = TickingClock()
    with open_audit_log(url) as log:
        for n in range(count):
            log.append(entry(n, clock, actor=f"process-{worker}"))


def test_two_processes_appending_at_once_keep_one_chain(pg_url: str) -> None:
    PostgresAuditLog(pg_url).close()  # create the table before the race
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(pg_url, w, 50)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with open_audit_log(pg_url) as log:
        records = log.read()
    check = verify_chain(records)
    assert (check.is_intact, check.checked) == (True, 100)
    assert {r.actor for r in records} == {"process-0", "process-1"}


def test_the_audit_log_and_the_event_store_share_a_database(pg_url: str) -> None:
    from agentlab.adapters import open_store

    with open_store(pg_url) as store, open_audit_log(pg_url) as log:
        log.append(entry(0, TickingClock()))
        assert store.run_ids() == []
    with psycopg.connect(pg_url) as conn:
        versions = dict(conn.execute("SELECT key, value FROM agentlab_meta").fetchall())
    assert versions == {"schema_version": "1", "audit_schema_version": "2"}


def test_the_documented_query_runs(pg_url: str) -> None:
    from tests.contracts.audit_log import documented_sql

    clock = TickingClock()
    with open_audit_log(pg_url) as log:
        for n in range(4):
            log.append(entry(n, clock))
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(documented_sql()).fetchall()
    assert [row[0] for row in rows] == [1, 3]
    assert rows[0][5] == "policy:po_up_to_5000_usd"
