"""A finished run's events become one metrics sample: outcomes, blocks, rework, latency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentlab.core.ids import IdFactory
from agentlab.gateway import Gateway
from agentlab.gateway.samples import run_sample
from agentlab.ops import AgentMetrics, SLOSet
from agentlab.policy import default_policy
from agentlab.store import MemoryEventStore, RunRecorder
from agentlab.store.audit import MemoryAuditLog


class StepClock:
    """Ticks a millisecond per read; ``advance`` jumps ahead."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


def test_a_run_is_summarised_with_its_waits_for_people_left_out() -> None:
    store, clock = MemoryEventStore(), StepClock()
    rec = RunRecorder.start(
        store,
        task="t",
        actor="alice",
        config="single",
        model="sim-large",
        clock=clock,
        ids=IdFactory.seeded(1),
    )
    read = rec.propose("find_supplier", {"query": "x"}, side_effect="read")
    rec.commit(read, {"ok": True}, latency_ms=5)
    order = rec.propose("create_purchase_order", {"supplier_id": "SUP-000001"}, side_effect="write")
    rec.dry_run(order.step_id, {"diff": {}})
    clock.advance(timedelta(hours=3))  # a person takes three hours to decide
    rec.reject(order.step_id, approver="bob", rejected_by="human", reason="too many")
    mail = rec.propose("send_email", {"to": "x@evil.example"}, side_effect="write")
    rec.reject(mail.step_id, approver="policy:allowlist", rejected_by="policy", reason="off list")
    bad = rec.propose("check_inventory", {"sku": 5}, side_effect="read")
    rec.fail(bad.step_id, error_code="invalid_arguments", message="sku", is_retryable=False)
    assert run_sample(store.read(rec.run_id), use_case="procurement") is None  # still open
    rec.finish("failed", reason="gave up")

    sample = run_sample(store.read(rec.run_id), use_case="procurement")
    assert sample is not None
    assert sample.status == "failed"
    assert sample.tool_outcomes == (
        ("find_supplier", "ok"),
        ("create_purchase_order", "rejected"),
        ("send_email", "blocked"),
        ("check_inventory", "invalid"),
    )
    assert sample.policy_blocks == ("allowlist",)
    assert sample.is_reworked
    assert 0 < sample.latency_s < 1  # the three hours of waiting are not the agent's


def test_a_run_the_approvals_scan_saw_finish_first_is_still_counted_once() -> None:
    store = MemoryEventStore()
    gateway = Gateway(
        store=store,
        audit=MemoryAuditLog(),
        policy=default_policy(),
        slos=SLOSet(),
        metrics=AgentMetrics(),
    )
    rec = RunRecorder.start(store, task="t", actor="alice", config="single", model="sim-large")
    rec.finish("succeeded")
    assert list(gateway.pending()) == []  # a scan (GET /approvals, a scrape) came first
    gateway.count_if_finished(rec.run_id)
    gateway.count_if_finished(rec.run_id)
    text = gateway.metrics.exposition()[0].decode()
    assert 'status="succeeded",use_case="unknown"} 1.0' in text
