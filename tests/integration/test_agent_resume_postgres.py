"""A run waiting for a person survives its process: PostgreSQL holds the events and the
graph's checkpoint, a new process resumes it, and the order is committed exactly once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agentlab.adapters import open_store
from agentlab.core.errors import ConfigError
from agentlab.lab.live import open_live_agent
from agentlab.runtime import ApprovalQueue

TASK = "Order 3 LAPTOP-16-DEV from SUP-000104."  # 7,350 USD: above the policy's limit


def test_an_approval_wait_survives_the_process_on_postgresql(
    pg_url: str, sim_url: str, world_url: str
) -> None:
    async def start() -> tuple[str, str]:
        with open_store(pg_url) as store:
            async with open_live_agent(
                "single",
                store=store,
                model_base_url=sim_url,
                world_url=world_url,
                checkpoint_url=pg_url,
            ) as live:
                run = await live.agent.arun(TASK, actor="alice", use_case="procurement")
        assert run.is_waiting
        assert run.waiting is not None
        return run.run_id, run.waiting["step_id"]

    async def resume(run_id: str) -> object:
        with open_store(pg_url) as store:
            async with open_live_agent(
                "single",
                store=store,
                model_base_url=sim_url,
                world_url=world_url,
                checkpoint_url=pg_url,
            ) as live:
                return await live.agent.aresume(run_id)  # type: ignore[arg-type]

    run_id, step_id = asyncio.run(start())
    assert httpx.get(f"{world_url}/_world/diff").json() == {}  # only a dry-run so far
    with open_store(pg_url) as store:
        ApprovalQueue(store).approve(run_id, step_id, reviewer="bob", reason="new team")  # type: ignore[arg-type]
    done = asyncio.run(resume(run_id))
    assert done.status == "finished"  # type: ignore[attr-defined]
    state = done.state  # type: ignore[attr-defined]
    assert state.status == "succeeded"
    assert state.steps[step_id].status == "committed"
    [order] = httpx.get(f"{world_url}/_world/diff").json()["erp.purchase_orders"]["added"]
    assert order["po_id"] in (state.answer or "")
    assert httpx.get(f"{world_url}/_world/stats").status_code == 200
    # A second resume of the finished run is refused: nothing can be committed twice.
    with pytest.raises(ConfigError, match=f"run {run_id} has finished"):
        asyncio.run(resume(run_id))
    with open_store(pg_url) as store:
        kinds = [e.kind for e in store.read(run_id)]  # type: ignore[arg-type]
    assert kinds.count("step_committed") == 1
    assert kinds.count("run_resumed") == 1
