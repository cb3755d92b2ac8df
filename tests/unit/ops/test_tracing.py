"""Spans for runs, nodes, model calls and tool calls: one run's trace is complete and nested.

The simulator and the world run in-process (``httpx.ASGITransport``), so no socket is opened;
spans are collected with the SDK's in-memory exporter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentlab.lab.live import open_live_agent
from agentlab.ops import (
    configure_tracing,
    load_spans,
    span_dicts,
    spans_frame,
    timeline,
    timeline_figure,
    tracing,
)
from agentlab.runtime import ApprovalQueue
from agentlab.store import MemoryEventStore

TONER = "Order 16 TONER-BK-05 from SUP-000103."  # within the policy's 5,000 USD: no person
LAPTOPS = "Order 3 LAPTOP-16-DEV from SUP-000104."  # 7,350 USD: a person must approve


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    handle = configure_tracing(exporter=memory, batch=False)
    yield memory
    handle.shutdown()


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}  # type: ignore[union-attr]


def parent_of(span: ReadableSpan, spans: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return spans.get(span.parent.span_id) if span.parent is not None else None


def assert_well_nested(spans: list[ReadableSpan]) -> ReadableSpan:
    """One root; every other span's parent is in the trace and encloses it in time."""
    index = by_id(spans)
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1, [s.name for s in roots]
    assert len({s.context.trace_id for s in spans}) == 1  # type: ignore[union-attr]
    for item in spans:
        if item.parent is None:
            continue
        parent = index.get(item.parent.span_id)
        assert parent is not None, f"{item.name}'s parent is missing"
        assert parent.start_time <= item.start_time  # type: ignore[operator]
        assert item.end_time <= parent.end_time  # type: ignore[operator]
    return roots[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def assert_includes(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert {key: actual.get(key) for key in expected} == expected


async def run_task(task: str, store: MemoryEventStore, **options: Any) -> Any:
    async with open_live_agent("single", store=store, seed=7, **options) as live:
        result = await live.agent.arun(task, actor="alice", use_case="procurement")
        return result, live


def test_a_run_is_one_trace_of_node_model_and_tool_spans_well_nested(
    exporter: InMemorySpanExporter,
) -> None:
    store = MemoryEventStore()
    result, _ = asyncio.run(run_task(TONER, store))
    assert result.state.status == "succeeded"
    spans = list(exporter.get_finished_spans())
    root = assert_well_nested(spans)
    index = by_id(spans)

    assert root.name == "invoke_agent single"
    assert_includes(
        attrs(root),
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "single",
            "agentlab.run.id": result.run_id,
            "agentlab.run.actor": "alice",
            "agentlab.run.use_case": "procurement",
            "agentlab.run.is_resumed": False,
            "agentlab.run.status": "finished",
            "agentlab.run.outcome": "succeeded",
        },
    )
    assert all(attrs(s)["agentlab.run.id"] == result.run_id for s in spans)

    nodes = [s for s in spans if s.name.startswith("node ")]
    assert {s.name for s in nodes} >= {"node plan", "node act", "node finish"}
    assert all(parent_of(s, index) is root for s in nodes)

    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == len(result.state.model_calls)
    for chat, called in zip(chats, result.state.model_calls, strict=True):
        assert parent_of(chat, index).name == "node plan"  # type: ignore[union-attr]
        a = attrs(chat)
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.request.model"] == "sim-large"
        assert a["gen_ai.provider.name"] == "agentlab.simulator"
        assert a["gen_ai.usage.input_tokens"] == called.prompt_tokens > 0
        assert a["gen_ai.usage.output_tokens"] == called.completion_tokens > 0
        assert a["gen_ai.response.finish_reasons"] == (called.finish_reason,)
        assert a["agentlab.cost_usd"] == pytest.approx(called.cost_usd)

    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    assert len(tools) == len(result.state.steps)
    assert all(parent_of(s, index).name == "node act" for s in tools)  # type: ignore[union-attr]
    [order] = [s for s in tools if s.name == "execute_tool create_purchase_order"]
    [step] = [s for s in result.state.steps.values() if s.step.tool == "create_purchase_order"]
    assert_includes(
        attrs(order),
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "create_purchase_order",
            "agentlab.step.id": step.step.step_id,
            "agentlab.idempotency_key": step.step.idempotency_key,
            "agentlab.tool.outcome": "ok",
        },
    )
    assert attrs(order)["gen_ai.tool.call.id"] == step.step.call_id
    # the SDK's spans read as the store's do, and draw the same tree
    drawn = timeline(span_dicts(spans))
    assert [r["depth"] for r in drawn if r["name"].startswith("node ")] == [1] * len(nodes)


def test_a_wait_for_approval_is_not_an_error_and_the_resume_is_a_second_trace(
    exporter: InMemorySpanExporter,
) -> None:
    async def scenario() -> tuple[Any, Any]:
        store = MemoryEventStore()
        async with open_live_agent("single", store=store, seed=7) as live:
            first = await live.agent.arun(LAPTOPS, actor="alice", use_case="procurement")
            assert first.is_waiting
            ApprovalQueue(store).approve(first.run_id, first.waiting["step_id"], reviewer="bob")
            done = await live.agent.aresume(first.run_id)
            return first, done

    _, done = asyncio.run(scenario())
    assert done.state.status == "succeeded"
    spans = list(exporter.get_finished_spans())
    traces: dict[int, list[ReadableSpan]] = {}
    for item in spans:
        traces.setdefault(item.context.trace_id, []).append(item)  # type: ignore[union-attr]
    assert len(traces) == 2
    start, resume = sorted(traces.values(), key=lambda t: min(s.start_time for s in t))  # type: ignore[type-var, return-value]
    start_root, resume_root = assert_well_nested(start), assert_well_nested(resume)
    assert attrs(start_root)["agentlab.run.status"] == "awaiting_approval"
    assert attrs(resume_root)["agentlab.run.is_resumed"] is True
    assert attrs(resume_root)["agentlab.run.outcome"] == "succeeded"
    [waiting] = [s for s in start if s.name == "node await_approval"]
    assert attrs(waiting)["agentlab.interrupted"] == "GraphInterrupt"
    assert waiting.status.is_ok
    [proposed] = [s for s in start if s.name == "execute_tool create_purchase_order"]
    [committed] = [s for s in resume if s.name == "execute_tool create_purchase_order"]
    assert attrs(proposed)["agentlab.tool.outcome"] == "awaiting_approval"
    assert attrs(committed)["agentlab.tool.outcome"] == "ok"
    # the same step and key in both stretches: the commit carried the step on
    for key in ("agentlab.step.id", "agentlab.idempotency_key"):
        assert attrs(proposed)[key] == attrs(committed)[key]


def test_failed_tool_calls_mark_their_span_as_an_error() -> None:
    memory = InMemorySpanExporter()
    handle = configure_tracing(exporter=memory, batch=False)
    try:
        with tracing.tool_span("find_supplier", run_id="run_x") as span:
            tracing.end_tool_span(span, outcome="failed", message="erp_api failed")
        with pytest.raises(ValueError, match="boom"), tracing.node_span("plan", run_id="run_x"):
            raise ValueError("boom")
    finally:
        handle.shutdown()
    failed, crashed = memory.get_finished_spans()
    assert not failed.status.is_ok
    assert attrs(failed)["error.type"] == "failed"
    assert not crashed.status.is_ok
    assert attrs(crashed)["error.type"] == "ValueError"
    assert crashed.events[0].name == "exception"


def test_without_tracing_the_helpers_hand_out_a_span_that_records_nothing() -> None:
    assert not tracing.is_tracing()
    with tracing.run_span(
        "run_x", config="single", actor="a", use_case="u", model="m", is_resumed=False
    ) as span:
        tracing.end_run_span(span, status="finished", outcome="failed", cost_usd=0.0)
    assert not span.is_recording()


def test_spans_kept_in_the_store_read_back_as_a_timeline(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'spans.duckdb'}"
    handle = configure_tracing(spans_url=url)
    try:
        result, _ = asyncio.run(run_task(TONER, MemoryEventStore()))
        assert handle.force_flush()
    finally:
        handle.shutdown()
    rows = load_spans(url, run_id=result.run_id)
    assert rows[0]["name"] == "invoke_agent single"
    assert rows[0]["parent_span_id"] is None
    assert {r["trace_id"] for r in rows} == {rows[0]["trace_id"]}
    drawn = timeline(rows)
    assert drawn[0]["span_id"] == rows[0]["span_id"]
    assert drawn[0]["depth"] == 0
    assert drawn[0]["offset_ms"] == 0
    frame = spans_frame(rows)
    assert list(frame["name"])[:2] == ["invoke_agent single", "node plan"]
    figure = timeline_figure(rows, title=result.run_id)
    assert len(figure.data[0].y) == len(rows)
    depth = {r["name"]: r["depth"] for r in drawn}
    assert depth["node plan"] == 1
    assert depth["chat sim-large"] == 2
    assert depth["execute_tool create_purchase_order"] == 2


def test_without_tracing_graph_nodes_are_left_unwrapped() -> None:
    from agentlab.agents.runner import build_graph

    plain = build_graph("single")
    assert all(type(spec.runnable).__name__ != "RunnableLambda" for spec in plain.nodes.values())
    handle = configure_tracing(exporter=InMemorySpanExporter(), batch=False)
    try:
        traced = build_graph("single")
    finally:
        handle.shutdown()
    assert all(type(spec.runnable).__name__ == "RunnableLambda" for spec in traced.nodes.values())
