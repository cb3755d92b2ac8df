"""LangGraph checkpointers in memory and in DuckDB: the contract, URLs, schema, pruning."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agentlab.adapters import open_checkpointer, open_store, prune_finished
from agentlab.adapters.duckdb_checkpointer import DuckDBCheckpointSaver
from agentlab.core.errors import ConfigError, SchemaTooNew, StoreClosed
from tests.contracts.checkpointer import (
    Chain,
    CheckpointerContract,
    Saver,
    approval_graph,
    config,
    run,
)


class TestMemoryCheckpointer(CheckpointerContract):
    @pytest.fixture
    def url(self) -> str:
        return "memory"

    @pytest.mark.skip(reason="memory keeps nothing past its process; restarts need DuckDB or PG")
    def test_a_run_waiting_for_approval_resumes_after_a_restart(self, url: str) -> None: ...


class TestDuckDBCheckpointer(CheckpointerContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"duckdb://{tmp_path / 'checkpoints.duckdb'}"


def test_the_urls_give_the_documented_savers(tmp_path: Path) -> None:
    async def kinds() -> list[type]:
        found = []
        for url in ("memory", "memory://", f"duckdb://{tmp_path}/c.duckdb", "duckdb://:memory:"):
            async with open_checkpointer(url) as saver:
                found.append(type(saver))
        return found

    assert asyncio.run(kinds()) == [InMemorySaver, InMemorySaver] + [DuckDBCheckpointSaver] * 2


@pytest.mark.parametrize(
    "url",
    ["mysql://alice:s3cret@db.internal/agentlab", "sqlite:///c.db", "duckdb:/c.duckdb", "memo"],
)
def test_an_unknown_url_is_refused_with_the_accepted_forms(url: str) -> None:
    async def open_it() -> None:
        async with open_checkpointer(url):
            pass

    with pytest.raises(ConfigError, match="checkpointer URL") as caught:
        asyncio.run(open_it())
    message = str(caught.value)
    assert "s3cret" not in message
    assert "duckdb:///abs/path/checkpoints.duckdb" in message
    assert "postgresql://user@host:5432/dbname" in message
    if "alice" in url:
        assert "mysql://alice:***@db.internal/agentlab" in message


def test_a_duckdb_url_without_a_file_is_refused() -> None:
    async def open_it() -> None:
        async with open_checkpointer("duckdb://"):
            pass

    with pytest.raises(ConfigError, match="names no file"):
        asyncio.run(open_it())


def test_a_file_from_a_newer_agentlab_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.duckdb"
    DuckDBCheckpointSaver(path).close()
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "UPDATE agentlab_meta SET value = '99' WHERE key = 'checkpoint_schema_version'"
        )

    async def open_it() -> None:
        async with open_checkpointer(f"duckdb://{path}"):
            pass

    with pytest.raises(SchemaTooNew, match="checkpoint schema version 99"):
        asyncio.run(open_it())


def test_the_checkpoints_may_share_the_event_stores_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    open_store(f"duckdb://{path}").close()

    async def body(saver: Saver) -> None:
        await Chain(saver, "run_1").put({"count": 1})

    run(f"duckdb://{path}", body)
    with open_store(f"duckdb://{path}") as store:
        assert store.run_ids() == []
    with duckdb.connect(str(path)) as conn:
        versions = dict(conn.execute("SELECT key, value FROM agentlab_meta").fetchall())
    assert versions == {"schema_version": "1", "checkpoint_schema_version": "1"}


def test_prune_leaves_no_value_or_write_that_no_kept_checkpoint_uses(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.duckdb"

    async def body(saver: Saver) -> None:
        chain = Chain(saver, "run_1")
        for n in range(1, 6):
            saved = await chain.put({"count": n, "log": ["x"] * n})
            await saver.aput_writes(saved, [("count", n + 1)], f"task-{n}")
        await prune_finished(saver, "run_1", keep_last=1)

    run(f"duckdb://{path}", body)
    with duckdb.connect(str(path)) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        ]
    assert counts == [1, 2, 1]  # the head, its two values, its one write


def test_a_negative_keep_last_is_refused() -> None:
    async def body(saver: Saver) -> None:
        with pytest.raises(ConfigError, match="keep_last=-1"):
            await prune_finished(saver, "run_1", keep_last=-1)

    run("memory", body)


def test_the_sync_methods_run_a_graph_too(tmp_path: Path) -> None:
    ran: list[str] = []
    thread = {"configurable": {"thread_id": "run_sync"}}
    with DuckDBCheckpointSaver(tmp_path / "checkpoints.duckdb") as saver:
        graph = approval_graph(saver, ran)
        assert "__interrupt__" in graph.invoke({"request": "PO-1"}, thread)
        assert graph.get_state(thread).next == ("ask_approval",)
        saver.prune([config("run_sync")["configurable"]["thread_id"]], strategy="keep_latest")
        assert len(list(saver.list(thread))) == 1
        saver.prune(["run_sync"], strategy="delete")
        assert saver.get_tuple(thread) is None
        with pytest.raises(TypeError, match="not one str"):
            saver.prune("run_sync")


def test_a_closed_saver_says_so(tmp_path: Path) -> None:
    saver = DuckDBCheckpointSaver(tmp_path / "checkpoints.duckdb")
    saver.close()
    saver.close()  # harmless
    with pytest.raises(StoreClosed, match="checkpointer is closed"):
        saver.get_tuple(config("run_1"))
