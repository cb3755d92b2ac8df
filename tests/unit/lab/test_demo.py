"""The scripted demo run: every governance step happens, and the store tells it."""

from __future__ import annotations

from agentlab.core.clock import TickingClock
from agentlab.core.ids import IdFactory
from agentlab.lab import record_demo_run
from agentlab.store import MemoryEventStore
from agentlab.store.audit import MemoryAuditLog


def test_the_demo_walks_through_every_governance_step() -> None:
    store, audit = MemoryEventStore(), MemoryAuditLog()
    result = record_demo_run(store, audit=audit, clock=TickingClock(), ids=IdFactory.seeded(3))

    assert [(label, outcome.status) for label, outcome in result.outcomes] == [
        ("low stock", "ok"),
        ("find supplier", "ok"),
        ("bad quantity", "invalid"),
        ("small order", "ok"),
        ("large order", "awaiting_approval"),
        ("mail off allowlist", "blocked"),
        ("order approved", "ok"),
        ("order again", "replayed"),
    ]
    assert result.is_repeat_replayed
    assert len(result.world_diff["erp.purchase_orders"]["added"]) == 2
    assert "mail.outbox" not in result.world_diff
    assert result.audit.is_intact
    assert result.state.status == "succeeded"
    assert result.state.times_resumed == 1
    kinds = [e.kind for e in store.read(result.run_id)]
    assert "step_retried" in kinds  # the injected 503
    assert {r.decision for r in audit.read()} >= {
        "invalid",
        "retried",
        "dry_run",
        "approved",
        "approval_requested",
        "blocked",
        "committed",
        "replayed",
    }


def test_the_demo_is_reproducible_with_a_fixed_clock_and_seed() -> None:
    def events() -> list[str]:
        store = MemoryEventStore()
        result = record_demo_run(store, clock=TickingClock(), ids=IdFactory.seeded(3))
        return [e.model_dump_json() for e in store.read(result.run_id)]

    assert events() == events()
