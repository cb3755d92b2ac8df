"""LangGraph's PostgreSQL checkpointer through open_checkpointer: the contract, and pruning."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import psycopg
import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from agentlab.adapters import open_checkpointer, open_store, prune_finished
from agentlab.core.errors import BackendError
from tests.contracts.checkpointer import Chain, CheckpointerContract, Saver, config, run
from tests.contracts.event_store import finished, started


class TestPostgresCheckpointer(CheckpointerContract):
    @pytest.fixture
    def url(self, pg_url: str) -> str:
        return pg_url


def test_a_postgresql_url_gives_langgraphs_async_saver(pg_url: str) -> None:
    async def body(saver: Saver) -> None:
        assert isinstance(saver, AsyncPostgresSaver)

    run(pg_url, body)
    run(pg_url.replace("postgresql://", "postgres://", 1), body)  # set-up runs once


def test_prune_leaves_no_value_or_write_that_no_kept_checkpoint_uses(pg_url: str) -> None:
    async def body(saver: Saver) -> None:
        chain = Chain(saver, "run_1")
        for n in range(1, 6):
            saved = await chain.put({"count": n, "log": ["x"] * n, "plan": {"n": n}})
            await saver.aput_writes(saved, [("count", n + 1)], f"task-{n}")
        await Chain(saver, "run_2").put({"log": ["other"]})
        await prune_finished(saver, "run_1", keep_last=1)

    run(pg_url, body)
    with psycopg.connect(pg_url) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = 'run_1'").fetchone()[0]
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        ]
        others = conn.execute(
            "SELECT count(*) FROM checkpoint_blobs WHERE thread_id = 'run_2'"
        ).fetchone()[0]
    # The head, its two non-primitive values (count is kept inline), its one write.
    assert counts == [1, 2, 1]
    assert others == 1


def test_the_checkpoints_share_the_event_stores_database(pg_url: str) -> None:
    with open_store(pg_url) as store:
        assert store.run_ids() == []

    async def body(saver: Saver) -> None:
        await Chain(saver, "run_1").put({"count": 1})

    run(pg_url, body)
    with open_store(pg_url) as store:
        assert store.run_ids() == []


def test_processes_starting_at_once_set_the_tables_up_once(pg_url: str) -> None:
    async def start_many() -> None:
        async def open_one() -> None:
            async with open_checkpointer(pg_url):
                pass

        await asyncio.gather(*(open_one() for _ in range(4)))

    asyncio.run(start_many())
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT count(*), count(DISTINCT v) FROM checkpoint_migrations")
        total, distinct = versions.fetchone()
    assert total == distinct > 0


def test_an_unreachable_database_is_a_backend_error_without_the_password(pg_url: str) -> None:
    missing = re.sub(r"/test_[0-9a-f]+", "/no_such_database", pg_url)
    with_password = missing.replace("postgresql://", "postgresql://agentlab:s3cret@", 1)

    async def open_it() -> None:
        async with open_checkpointer(with_password):
            pass

    with pytest.raises(BackendError, match="cannot connect") as caught:
        asyncio.run(open_it())
    assert "s3cret" not in str(caught.value)


def documented_sql(name: str) -> str:
    """The ``sql`` block of docs/checkpoints.md whose first line is ``-- name``."""
    doc = (Path(__file__).parents[2] / "docs" / "checkpoints.md").read_text(encoding="utf-8")
    (query,) = [
        q for q in re.findall(r"```sql\n(.*?)```", doc, re.DOTALL) if q.startswith(f"-- {name}\n")
    ]
    return query


def test_the_documented_queries_and_scheduled_prune_work(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(pg_url) as store:
        store.append([started("run_done"), finished("run_done", 1), started("run_waiting")])

    async def body(saver: Saver) -> None:
        for thread_id in ("run_done", "run_waiting"):
            await Chain(saver, thread_id).put({"log": ["x"]})

    run(pg_url, body)
    with psycopg.connect(pg_url) as conn:
        sizes = conn.execute(documented_sql("checkpoint table sizes")).fetchall()
        biggest = conn.execute(documented_sql("biggest threads")).fetchall()
        done = conn.execute(documented_sql("finished threads")).fetchall()
    assert {row[0] for row in sizes} == {"checkpoints", "checkpoint_blobs", "checkpoint_writes"}
    assert {row[0] for row in biggest} == {"run_done", "run_waiting"}
    assert done == [("run_done",)]  # the waiting run's checkpoints stay

    # The doc's scheduled-prune script, run as written against this database.
    doc = (Path(__file__).parents[2] / "docs" / "checkpoints.md").read_text(encoding="utf-8")
    (script,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", doc, re.DOTALL)
        if block.startswith('"""prune_checkpoints.py')
    ]
    monkeypatch.setenv("AGENTLAB_STORE_URL", pg_url)
    exec(compile(script, "prune_checkpoints.py", "exec"), {"__name__": "__docs__"})
    assert "pruned 1 finished threads" in capsys.readouterr().out

    async def after(saver: Saver) -> None:
        assert await saver.aget_tuple(config("run_done")) is None
        assert await saver.aget_tuple(config("run_waiting")) is not None

    run(pg_url, after)
