"""With a key, what a checkpoint holds of a run's conversation is stored encrypted."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import duckdb
import pytest
from cryptography.fernet import Fernet
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agentlab.adapters import open_checkpointer
from agentlab.core.errors import ConfigError

SECRET = "TOOL-RESULT-7f3a: salary band E4 is 9,100,000 JPY"


class Conversation(TypedDict, total=False):
    messages: Annotated[list[dict[str, Any]], operator.add]
    answer: str


def build(saver: Any) -> Any:
    def read(state: Conversation) -> Conversation:
        return {"messages": [{"role": "tool", "content": SECRET}]}

    def wait(state: Conversation) -> Conversation:
        return {"answer": str(interrupt("approve?"))}

    graph = StateGraph(Conversation)
    graph.add_node("read", read)
    graph.add_node("wait", wait)
    graph.add_edge(START, "read")
    graph.add_edge("read", "wait")
    graph.add_edge("wait", END)
    return graph.compile(checkpointer=saver)


CONFIG = {"configurable": {"thread_id": "run_1"}}


async def pause(url: str, key: bytes | None) -> None:
    async with open_checkpointer(url, key=key) as saver:
        result = await build(saver).ainvoke({"messages": []}, CONFIG)
        assert result["__interrupt__"]


async def resume(url: str, key: bytes | None) -> Any:
    async with open_checkpointer(url, key=key) as saver:
        return await build(saver).ainvoke(Command(resume="yes"), CONFIG)


def stored_bytes(path: Path) -> bytes:
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        found = b""
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
                for value in row:
                    found += value if isinstance(value, bytes) else str(value).encode()
        return found


def test_with_a_key_the_conversation_is_unreadable_in_the_file_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.duckdb"
    key = Fernet.generate_key()
    asyncio.run(pause(f"duckdb://{path}", key))
    assert b"TOOL-RESULT-7f3a" not in stored_bytes(path)
    done = asyncio.run(resume(f"duckdb://{path}", key))
    assert done["answer"] == "yes"
    assert done["messages"][0]["content"] == SECRET


def test_without_a_key_the_same_text_is_in_the_file(tmp_path: Path) -> None:
    """The control: the check above would see the text if it were stored as it is."""
    path = tmp_path / "checkpoints.duckdb"
    asyncio.run(pause(f"duckdb://{path}", None))
    assert b"TOOL-RESULT-7f3a" in stored_bytes(path)


def test_another_key_cannot_resume_the_run(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'checkpoints.duckdb'}"
    asyncio.run(pause(url, Fernet.generate_key()))
    with pytest.raises(ConfigError, match="encrypted with another key"):
        asyncio.run(resume(url, Fernet.generate_key()))


def test_a_key_that_is_not_a_fernet_key_is_refused() -> None:
    async def open_it() -> None:
        async with open_checkpointer("memory", key=b"too short"):
            pass

    with pytest.raises(ConfigError, match="not a Fernet key"):
        asyncio.run(open_it())
