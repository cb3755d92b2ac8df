"""The three configurations end to end: the simulator and the world as real HTTP servers.

The model is reached by the real ``openai`` client over a socket, the tools' systems by the
tools' httpx code over another; the store and the checkpointer are DuckDB files. What each
run did must be readable from its events alone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from agentlab.adapters import open_store
from agentlab.agents import AgentRun
from agentlab.lab.live import open_live_agent
from agentlab.runtime import ReviewDecision, ScriptedReviewer
from agentlab.store import EventStore

TASKS = {
    "chat_rag": ("How do I connect to the VPN?", "bob", "helpdesk"),
    "single": ("Order 16 TONER-BK-05 from SUP-000103.", "alice", "procurement"),
    "multi": ("Order 16 TONER-BK-05 from SUP-000103.", "alice", "procurement"),
}


async def run_over_http(
    config: str, store: EventStore, *, sim_url: str, world_url: str, checkpoints: str
) -> AgentRun:
    task, actor, use_case = TASKS[config]
    async with open_live_agent(
        config,
        store=store,
        model="sim-large",
        model_base_url=sim_url,
        world_url=world_url,
        checkpoint_url=checkpoints,
        reviewer=ScriptedReviewer(lambda request: ReviewDecision.approve("reviewer")),
    ) as live:
        assert live.world is None  # the world is the server's
        return await live.agent.arun(task, actor=actor, use_case=use_case)


@pytest.mark.parametrize("config", ["chat_rag", "single", "multi"])
def test_each_configuration_runs_end_to_end_and_its_events_tell_the_story(
    config: str, sim_url: str, world_url: str, tmp_path: Path
) -> None:
    with open_store(f"duckdb://{tmp_path / 'runs.duckdb'}") as store:
        result = asyncio.run(
            run_over_http(
                config,
                store,
                sim_url=sim_url,
                world_url=world_url,
                checkpoints=f"duckdb://{tmp_path / 'checkpoints.duckdb'}",
            )
        )
        events = store.read(result.run_id)
    state = result.state
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started"
    assert kinds[-1] == "run_finished"
    assert state.status == "succeeded", state.answer
    assert state.run.config == config
    assert state.run.model == "sim-large"
    assert state.model_calls
    assert all(call.is_simulated for call in state.model_calls)
    assert all(call.cost_usd > 0 and call.prompt_tokens > 0 for call in state.model_calls)
    diff = httpx.get(f"{world_url}/_world/diff").json()
    if config == "chat_rag":
        [retrieval] = [a for a in state.artifacts if a.kind == "retrieval"]
        assert {h["doc_id"] for h in retrieval.content["hits"]} >= {"KB-IT-001"}  # type: ignore[index]
        assert state.steps == {}
        assert "KB-IT-001" in (state.answer or "")
        assert diff == {}
        return
    [order] = [s for s in state.steps.values() if s.step.tool == "create_purchase_order"]
    assert order.status == "committed"
    assert order.step.call_id is not None  # the model's call, found again on a resume
    assert {"step_dry_run_completed", "step_approved", "step_committed"} <= set(kinds)
    [placed] = diff["erp.purchase_orders"]["added"]
    assert placed["po_id"] in (state.answer or "")
    if config == "multi":
        assert [a.kind for a in state.artifacts if a.kind == "plan"]
        verifiers = {v.verifier for v in state.verdicts}
        assert {"rules", "model:sim-large"} <= verifiers
        assert state.verdicts[-1].passed
