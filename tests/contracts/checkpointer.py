"""The contract every LangGraph checkpointer backend passes (memory, DuckDB, PostgreSQL).

Subclass with a ``url`` fixture: the URL :func:`agentlab.adapters.open_checkpointer` opens.
Each test opens its own saver; the restart test opens a second one on the same URL after the
first is closed, as a new process would. Agents run graphs with ``ainvoke``, so the tests
drive the async methods, each test in its own event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, ChannelVersions, Checkpoint
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agentlab.adapters import open_checkpointer, prune_finished

Saver = BaseCheckpointSaver[Any]


def run(url: str, body: Callable[[Saver], Awaitable[None]]) -> None:
    """Open the checkpointer at ``url``, run ``body`` with it in a new event loop, close it."""

    async def main() -> None:
        async with open_checkpointer(url) as saver:
            await body(saver)

    asyncio.run(main())


def config(thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None) -> Any:
    configurable = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def checkpoint_id(n: int) -> str:
    """Ids sort as LangGraph's uuid6 ids do: a later checkpoint has a larger id."""
    return f"1f000000-0000-6000-8000-{n:012d}"


class Chain:
    """Puts checkpoints on one thread the way a running graph does: each one's values,
    with new versions only for the channels that changed, and its parent in the config."""

    def __init__(self, saver: Saver, thread_id: str, checkpoint_ns: str = "") -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.values: dict[str, Any] = {}
        self.versions: ChannelVersions = {}
        self.head: str | None = None
        self.n = 0

    async def put(self, changes: dict[str, Any], **metadata: Any) -> RunnableConfig:
        self.n += 1
        new_versions = {
            channel: self.saver.get_next_version(self.versions.get(channel), None)
            for channel in changes
        }
        self.values.update(changes)
        self.versions.update(new_versions)
        checkpoint: Checkpoint = {
            "v": 4,
            "id": checkpoint_id(self.n),
            "ts": f"2026-01-01T00:00:{self.n:02d}+00:00",
            "channel_values": dict(self.values),
            "channel_versions": dict(self.versions),
            "versions_seen": {},
            "updated_channels": sorted(changes),
        }
        saved = await self.saver.aput(
            config(self.thread_id, self.checkpoint_ns, self.head),
            checkpoint,
            {"source": "loop", "step": self.n, **metadata},
            new_versions,
        )
        self.head = saved["configurable"]["checkpoint_id"]
        return saved


async def ids(saver: Saver, cfg: Any = None, **options: Any) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] async for t in saver.alist(cfg, **options)]


class ApprovalState(TypedDict, total=False):
    request: str
    decision: str
    outcome: str


def approval_graph(saver: Saver, ran: list[str]) -> Any:
    """Ask a human before committing: ``interrupt()`` stops the run until a resume."""

    def ask_approval(state: ApprovalState) -> ApprovalState:
        ran.append("ask_approval: before interrupt")  # the code a resume runs again
        decision = interrupt({"question": "commit this purchase order?", **state})
        return {"decision": decision}

    def commit(state: ApprovalState) -> ApprovalState:
        ran.append("commit")
        return {"outcome": f"{state['request']}: {state['decision']}"}

    builder = StateGraph(ApprovalState)
    builder.add_node("ask_approval", ask_approval)
    builder.add_node("commit", commit)
    builder.add_edge(START, "ask_approval")
    builder.add_edge("ask_approval", "commit")
    builder.add_edge("commit", END)
    return builder.compile(checkpointer=saver)


class CheckpointerContract:
    """Every backend passes every test here."""

    def test_a_checkpoint_comes_back_with_its_channel_values(self, url: str) -> None:
        async def body(saver: Saver) -> None:
            chain = Chain(saver, "run_1")
            message = {"role": "user", "content": "order 5 toner cartridges, 日本語も"}
            first = await chain.put({"messages": [message], "count": 1, "approved": False})
            second = await chain.put({"count": 2})  # messages is not written again

            latest = await saver.aget_tuple(config("run_1"))
            assert latest is not None
            assert latest.config == second
            assert latest.checkpoint["id"] == second["configurable"]["checkpoint_id"]
            assert latest.checkpoint["channel_values"] == {
                "messages": [message],
                "count": 2,
                "approved": False,
            }
            assert latest.checkpoint["channel_versions"] == chain.versions
            assert latest.metadata == {"source": "loop", "step": 2}
            assert latest.parent_config == first
            assert latest.pending_writes == []

            older = await saver.aget_tuple(first)
            assert older is not None
            assert older.checkpoint["channel_values"]["count"] == 1
            assert older.parent_config is None
            assert await saver.aget_tuple(config("run_1", "", checkpoint_id(99))) is None
            assert await saver.aget_tuple(config("run_2")) is None

        run(url, body)

    def test_list_is_newest_first_with_before_limit_and_metadata_filter(self, url: str) -> None:
        async def body(saver: Saver) -> None:
            chain = Chain(saver, "run_1")
            saved = [
                await chain.put({"count": n}, phase="plan" if n % 2 else "act") for n in range(1, 6)
            ]
            await Chain(saver, "run_other").put({"count": 0}, phase="plan")
            newest_first = [c["configurable"]["checkpoint_id"] for c in reversed(saved)]

            assert await ids(saver, config("run_1")) == newest_first
            assert await ids(saver, config("run_1"), limit=2) == newest_first[:2]
            assert await ids(saver, config("run_1"), before=saved[2]) == newest_first[3:]
            assert await ids(saver, config("run_1"), filter={"phase": "plan"}) == [
                newest_first[0],
                newest_first[2],
                newest_first[4],
            ]
            assert await ids(
                saver, config("run_1"), filter={"phase": "plan"}, before=saved[4], limit=1
            ) == [newest_first[2]]
            assert await ids(saver, config("run_1"), filter={"phase": "review"}) == []
            assert len(await ids(saver, None)) == 6
            assert len(await ids(saver, None, filter={"phase": "plan"})) == 4

        run(url, body)

    def test_pending_writes_come_back_with_their_checkpoint(self, url: str) -> None:
        async def body(saver: Saver) -> None:
            chain = Chain(saver, "run_1")
            saved = await chain.put({"count": 1})
            await saver.aput_writes(saved, [("count", 2), ("messages", ["hi"])], "task-b", "b")
            await saver.aput_writes(saved, [("count", 3)], "task-a", "a")
            # An ordinary write is kept once: a retried task does not replace it ...
            await saver.aput_writes(saved, [("count", 99)], "task-a", "a")
            # ... while a special write (an error, an interrupt) replaces the earlier one.
            await saver.aput_writes(saved, [("__error__", "first failure")], "task-c", "c")
            await saver.aput_writes(saved, [("__error__", "second failure")], "task-c", "c")

            found = await saver.aget_tuple(config("run_1"))
            assert found is not None
            assert found.pending_writes == [
                ("task-a", "count", 3),
                ("task-b", "count", 2),
                ("task-b", "messages", ["hi"]),
                ("task-c", "__error__", "second failure"),
            ]
            newer = await chain.put({"count": 2})
            after = await saver.aget_tuple(newer)
            assert after is not None
            assert after.pending_writes == []

        run(url, body)

    def test_threads_and_namespaces_are_kept_apart(self, url: str) -> None:
        async def body(saver: Saver) -> None:
            await Chain(saver, "run_1").put({"who": "run_1 root"})
            await Chain(saver, "run_1", "approve:task-1").put({"who": "run_1 subgraph"})
            await Chain(saver, "run_2").put({"who": "run_2 root"})

            for thread_id, ns, who in [
                ("run_1", "", "run_1 root"),
                ("run_1", "approve:task-1", "run_1 subgraph"),
                ("run_2", "", "run_2 root"),
            ]:
                found = await saver.aget_tuple(config(thread_id, ns))
                assert found is not None
                assert found.checkpoint["channel_values"] == {"who": who}
                assert len(await ids(saver, config(thread_id, ns))) == 1
            assert await saver.aget_tuple(config("run_2", "approve:task-1")) is None
            assert len(await ids(saver, {"configurable": {"thread_id": "run_1"}})) == 2

        run(url, body)

    def test_delete_thread_removes_that_thread_only(self, url: str) -> None:
        async def body(saver: Saver) -> None:
            for thread_id in ("run_1", "run_2"):
                chain = Chain(saver, thread_id)
                saved = await chain.put({"count": 1})
                await saver.aput_writes(saved, [("count", 2)], "task-1")
                await Chain(saver, thread_id, "sub:1").put({"count": 1})

            await saver.adelete_thread("run_1")

            assert await ids(saver, {"configurable": {"thread_id": "run_1"}}) == []
            assert await saver.aget_tuple(config("run_1")) is None
            assert await saver.aget_tuple(config("run_1", "sub:1")) is None
            kept = await saver.aget_tuple(config("run_2"))
            assert kept is not None
            assert kept.checkpoint["channel_values"] == {"count": 1}
            assert kept.pending_writes == [("task-1", "count", 2)]
            assert len(await ids(saver, {"configurable": {"thread_id": "run_2"}})) == 2

        run(url, body)

    def test_prune_keeps_the_newest_checkpoints_of_a_finished_run(self, url: str) -> None:
        async def body(saver: Saver) -> None:
            chain = Chain(saver, "run_1")
            saved = []
            for n in range(1, 6):
                checkpoint = await chain.put({"count": n, "log": [f"step {i}" for i in range(n)]})
                await saver.aput_writes(checkpoint, [("count", n + 1)], f"task-{n}")
                saved.append(checkpoint)
            other = Chain(saver, "run_2")
            for n in range(3):
                await other.put({"count": n, "log": ["kept"]})

            await prune_finished(saver, "run_1", keep_last=2)

            newest, older = saved[4], saved[3]
            assert await ids(saver, config("run_1")) == [
                newest["configurable"]["checkpoint_id"],
                older["configurable"]["checkpoint_id"],
            ]
            head = await saver.aget_tuple(config("run_1"))
            assert head is not None
            assert head.checkpoint["channel_values"] == {
                "count": 5,
                "log": [f"step {i}" for i in range(5)],
            }
            assert head.parent_config == older
            assert head.pending_writes == [("task-5", "count", 6)]
            oldest_kept = await saver.aget_tuple(older)
            assert oldest_kept is not None
            assert oldest_kept.checkpoint["channel_values"]["log"] == [
                f"step {i}" for i in range(4)
            ]
            assert oldest_kept.parent_config is None  # its parent is gone
            assert await saver.aget_tuple(saved[0]) is None
            assert len(await ids(saver, config("run_2"))) == 3

            await prune_finished(saver, "run_1")  # keep_last=0: the whole thread goes
            await prune_finished(saver, "run_1")  # again: nothing left is no error
            await prune_finished(saver, "run_1", keep_last=1)

            assert await ids(saver, config("run_1")) == []
            assert len(await ids(saver, config("run_2"))) == 3
            untouched = await saver.aget_tuple(config("run_2"))
            assert untouched is not None
            assert untouched.checkpoint["channel_values"] == {"count": 2, "log": ["kept"]}

        run(url, body)

    def test_a_run_waiting_for_approval_resumes_after_a_restart(self, url: str) -> None:
        """The approval wait survives the process: a new saver on the same URL resumes it.

        LangGraph resumes by running the interrupted node again from its start, so the
        node's code before ``interrupt()`` runs twice. A side effect placed there would
        happen twice; that is why the runtime gives every side effect an idempotency key
        and commits a key at most once (docs/checkpoints.md).
        """
        ran: list[str] = []
        thread = {"configurable": {"thread_id": "run_approval"}}

        async def until_interrupt(saver: Saver) -> None:
            result = await approval_graph(saver, ran).ainvoke({"request": "PO-000103"}, thread)
            (waiting,) = result["__interrupt__"]
            assert waiting.value == {
                "question": "commit this purchase order?",
                "request": "PO-000103",
            }

        async def after_restart(saver: Saver) -> None:
            graph = approval_graph(saver, ran)
            state = await graph.aget_state(thread)
            assert state.next == ("ask_approval",)
            result = await graph.ainvoke(Command(resume="approved by alice"), thread)
            assert result == {
                "request": "PO-000103",
                "decision": "approved by alice",
                "outcome": "PO-000103: approved by alice",
            }
            assert (await graph.aget_state(thread)).next == ()

        run(url, until_interrupt)
        assert ran == ["ask_approval: before interrupt"]
        run(url, after_restart)  # a new saver: nothing is shared but the URL
        assert ran == [
            "ask_approval: before interrupt",
            "ask_approval: before interrupt",  # re-run on resume: hence idempotency keys
            "commit",
        ]
