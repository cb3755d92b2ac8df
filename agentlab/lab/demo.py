"""A scripted procurement run through the governed executor, against the sandbox world.

There is no model: a fixed plan stands in for the planner, so that every governance step
of the article can be watched on its own. It reads stock below its reorder point and finds
the supplier; proposes an order with a quantity the schema refuses; places a small order
that policy approves (through a 503 from the ERP, retried with the configured backoff);
proposes a large one that must wait for a person; tries to mail a domain off the
allowlist. Then the process "stops". A person approves the waiting order from the queue,
the run resumes from the store, the order is committed -- and committed only once, even
when the step is carried on again. Every decision is an event in the store and a record in
the hash-chained audit log.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import httpx
from pydantic import JsonValue

from agentlab.core.clock import Clock, SystemClock
from agentlab.core.ids import IdFactory, RunId
from agentlab.policy import Policy, default_policy
from agentlab.runtime import ApprovalQueue, CallRequest, Executor, ToolOutcome
from agentlab.store import EventStore, RunRecorder, RunState, project_run
from agentlab.store.audit import AuditLog, ChainCheck, MemoryAuditLog, verify_chain
from agentlab.store.conversation import ConversationLog
from agentlab.tools import builtin_tools
from agentlab.world import Fault, World, build_world_app

DEMO_TASK = "Restock the floor-3 printer toner, and the laptops for the new team"
REQUEST = CallRequest(actor="alice", use_case="procurement")
REVIEWER = "bob"


class DemoResult(NamedTuple):
    """What the demo left behind."""

    run_id: RunId
    state: RunState
    outcomes: tuple[tuple[str, ToolOutcome], ...]
    """Each scripted call, labelled, with what the executor made of it."""
    world_diff: dict[str, dict[str, list[JsonValue]]]
    """What changed in the sandbox world."""
    audit: ChainCheck
    """The audit log's hash chain, checked after the run."""

    @property
    def is_repeat_replayed(self) -> bool:
        """True when carrying on the committed order again returned its recorded result."""
        return dict(self.outcomes)["order again"].status == "replayed"


def record_demo_run(
    store: EventStore,
    *,
    audit: AuditLog | None = None,
    conversation: ConversationLog | None = None,
    policy: Policy | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> DemoResult:
    """Run the scripted procurement run; see :func:`arecord_demo_run`."""
    return asyncio.run(
        arecord_demo_run(
            store, audit=audit, conversation=conversation, policy=policy, clock=clock, ids=ids
        )
    )


async def arecord_demo_run(
    store: EventStore,
    *,
    audit: AuditLog | None = None,
    conversation: ConversationLog | None = None,
    policy: Policy | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> DemoResult:
    """Record the scripted run in ``store`` against a fresh in-process world.

    Args:
        store: Where the run's events go.
        audit: Where decision points go; an in-memory log if None.
        conversation: Where the text the "model" would read goes (encrypted), if anywhere.
        policy: The policy; the embedded default (phase 3) if None.
        clock: Time source; a TickingClock gives identical times on every call.
        ids: Id source; ``IdFactory.seeded(n)`` gives identical ids in a fresh store.
    """
    clock = clock or SystemClock()
    audit = audit if audit is not None else MemoryAuditLog()
    world = World(clock=clock)
    transport = httpx.ASGITransport(app=build_world_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://world") as http:
        executor = Executor(
            tools=builtin_tools(),
            policy=policy or default_policy(),
            http=http,
            audit=audit,
            clock=clock,
            conversation=conversation,
        )
        outcomes: list[tuple[str, ToolOutcome]] = []

        async def call(label: str, recorder: RunRecorder, tool: str, **args: JsonValue) -> None:
            outcomes.append((label, await executor.call(recorder, REQUEST, tool, args)))

        run = RunRecorder.start(
            store,
            task=DEMO_TASK,
            actor=REQUEST.actor,
            config="scripted-demo",
            model="none (a scripted plan, no model)",
            clock=clock,
            ids=ids,
        )
        await call("low stock", run, "check_inventory", sku=None, below_reorder=True)
        await call("find supplier", run, "find_supplier", query="Nagoya")
        await call("bad quantity", run, "create_purchase_order", **_order("SUP-000103", TONER=5000))
        world.add_fault(Fault("POST", "/erp/purchase-orders", status=503, times=1))
        await call("small order", run, "create_purchase_order", **_order("SUP-000103", TONER=16))
        big = _order("SUP-000104", **{"LAPTOP-16-DEV": 2, "DOCK-USB-C": 6})
        await call("large order", run, "create_purchase_order", **big)
        await call(
            "mail off allowlist",
            run,
            "send_email",
            to=["buyer@example.co.jp", "friend@gmail.com"],
            subject="Orders placed",
            body="The toner and laptop orders are placed.",
            dry_run=False,
            idempotency_key="demo-mail-key-0001",
        )
        # The process stops here. Later, a person answers the approval queue ...
        waiting = dict(outcomes)["large order"]
        ApprovalQueue(store, clock=clock).approve(
            run.run_id, waiting.step_id, reviewer=REVIEWER, reason="laptops for the new team"
        )
        # ... and a new process resumes the run from what the store holds.
        resumed, state = RunRecorder.resume(
            store, run.run_id, reason="approval arrived; worker restarted", clock=clock
        )
        for step in state.open_steps:
            outcomes.append(
                ("order approved", await executor.continue_step(resumed, REQUEST, step))
            )
        committed = project_run(store.read(run.run_id)).steps[waiting.step_id]
        outcomes.append(("order again", await executor.continue_step(resumed, REQUEST, committed)))
        orders = [o.content for label, o in outcomes if label in ("small order", "order approved")]
        resumed.finish("succeeded", answer=f"Placed {len(orders)} purchase orders.")

    return DemoResult(
        run.run_id,
        project_run(store.read(run.run_id)),
        tuple(outcomes),
        world.diff(),
        verify_chain(audit.read()),
    )


def _order(supplier_id: str, **quantities: int) -> dict[str, JsonValue]:
    skus = {"TONER": "TONER-BK-05"}
    items: list[JsonValue] = [
        {"sku": skus.get(name, name), "qty": qty} for name, qty in quantities.items()
    ]
    return {
        "supplier_id": supplier_id,
        "items": items,
        "dry_run": False,
        "idempotency_key": "demo-model-key-0001",
    }
