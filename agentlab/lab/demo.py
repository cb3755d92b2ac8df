"""A scripted run that shows the event store end to end, with no model and no tools.

It plays the article's purchase-order flow -- look up a supplier, propose the order, dry-run,
approve by policy -- then "crashes" before the commit, resumes from the store as a restarted
process would, commits exactly once, tries the commit again (as a careless retry would) and
is refused, verifies and finishes. Every line of it is an event in the store.

This is a demonstration of the state model, not an agent: the planner, the tools and the
sandbox world arrive with later parts of agentlab.
"""

from __future__ import annotations

from typing import NamedTuple

from agentlab.core.clock import Clock
from agentlab.core.errors import DuplicateIdempotencyKey
from agentlab.core.ids import IdFactory, RunId
from agentlab.store.projection import RunState, project_run
from agentlab.store.protocol import EventStore
from agentlab.store.recorder import RunRecorder

DEMO_TASK = "Order 40 toner cartridges (TONER-K) from supplier SUP-000123"


class DemoResult(NamedTuple):
    """What the demo left behind."""

    run_id: RunId
    state: RunState
    is_duplicate_refused: bool
    """True when the store refused the second commit under the same idempotency key."""


def record_demo_run(
    store: EventStore, *, clock: Clock | None = None, ids: IdFactory | None = None
) -> DemoResult:
    """Record the demo run in ``store`` and return its final state.

    Args:
        store: Where the events go.
        clock: Time source; pass a TickingClock for identical timestamps on every call.
        ids: Id source; pass ``IdFactory.seeded(n)`` for identical ids (in a fresh store).
    """
    ids = ids or IdFactory()
    first = RunRecorder.start(
        store,
        task=DEMO_TASK,
        actor="alice",
        scopes=("erp:read", "erp:write"),
        config="scripted-demo",
        model="none",
        clock=clock,
        ids=ids,
    )
    lookup = first.propose("find_supplier", {"query": "SUP-000123"})
    first.commit(
        lookup, {"supplier_id": "SUP-000123", "name": "Tokyo Office Supply"}, latency_ms=85
    )
    order_args = {"supplier_id": "SUP-000123", "items": [{"sku": "TONER-K", "qty": 40}]}
    order = first.propose("create_purchase_order", order_args, side_effect="write")
    first.dry_run(
        order.step_id, {"purchase_orders": {"added": [{"supplier_id": "SUP-000123", "lines": 1}]}}
    )
    first.approve(order.step_id, approver="rule:orders-under-1000-units", approved_by="policy")
    # The process dies here, between approval and commit. Only the store remembers.

    resumed, state = RunRecorder.resume(
        store, first.run_id, reason="worker restarted", clock=clock, ids=ids
    )
    for open_step in state.open_steps:
        resumed.commit(open_step.step, {"po_id": "PO-000001", "status": "created"}, latency_ms=240)
    try:  # a careless retry of the same side effect
        resumed.commit(order, {"po_id": "PO-000002", "status": "created"}, latency_ms=240)
        is_refused = False
    except DuplicateIdempotencyKey:
        is_refused = True
    resumed.artifact("evidence", {"po_id": "PO-000001"}, step_id=order.step_id)
    resumed.verify(verifier="rules", passed=True, findings=("one purchase order, 40 x TONER-K",))
    resumed.finish("succeeded", answer="Created PO-000001 for 40 x TONER-K from SUP-000123.")
    return DemoResult(first.run_id, project_run(store.read(first.run_id)), is_refused)
