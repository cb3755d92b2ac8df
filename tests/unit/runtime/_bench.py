"""A bench for the executor: the sandbox world in-process over an httpx ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from agentlab.core.clock import TickingClock
from agentlab.core.ids import IdFactory
from agentlab.policy import Policy, default_policy
from agentlab.runtime import CallRequest, Executor, Reviewer, ToolCaps
from agentlab.store import MemoryEventStore, RunRecorder
from agentlab.store.audit import MemoryAuditLog
from agentlab.tools import builtin_tools
from agentlab.world import build_world_app

T = TypeVar("T")

PROCUREMENT = CallRequest(actor="alice", use_case="procurement")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test's coroutine on a fresh event loop."""
    return asyncio.run(coro)


def policy_with(**changes: Any) -> Policy:
    """The default policy with top-level keys replaced (values as YAML-shaped dicts)."""
    data = default_policy().model_dump(mode="json", by_alias=True)
    data.update(changes)
    return Policy.model_validate(data)


@dataclass
class Bench:
    """An executor wired to a fresh world, an in-memory store and audit log."""

    executor: Executor
    store: MemoryEventStore
    audit: MemoryAuditLog
    http: httpx.AsyncClient
    sent: list[httpx.Request] = field(default_factory=list)
    """Every request that left the executor for the world, in order."""
    clock: TickingClock = field(default_factory=TickingClock)
    slept_s: list[float] = field(default_factory=list)
    ids: IdFactory = field(default_factory=lambda: IdFactory.seeded(1))

    def start(self, task: str = "reorder toner", actor: str = "alice") -> RunRecorder:
        return RunRecorder.start(self.store, task=task, actor=actor, clock=self.clock, ids=self.ids)

    async def world(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def sent_to(self, path: str, method: str = "POST") -> list[httpx.Request]:
        return [r for r in self.sent if r.url.path == path and r.method == method]

    def kinds(self, recorder: RunRecorder) -> list[str]:
        return [e.kind for e in self.store.read(recorder.run_id)]


@asynccontextmanager
async def bench(
    policy: Policy | None = None,
    *,
    reviewer: Reviewer | None = None,
    caps: ToolCaps | None = None,
    app: FastAPI | None = None,
) -> AsyncIterator[Bench]:
    """A bench on a fresh world; the executor's requests are captured as they are sent.

    Pass ``app`` to reuse one world app across many benches (it is reset first).
    """
    sent: list[httpx.Request] = []

    async def capture(request: httpx.Request) -> None:
        if not request.url.path.startswith("/_world"):
            sent.append(request)

    if app is not None:
        app.state.world.reset()
    transport = httpx.ASGITransport(app=app or build_world_app())
    async with httpx.AsyncClient(
        transport=transport, base_url="http://world", event_hooks={"request": [capture]}
    ) as http:
        clock = TickingClock()
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        policy = policy or default_policy()
        executor = Executor(
            tools=builtin_tools(),
            policy=policy,
            http=http,
            audit=MemoryAuditLog(),
            reviewer=reviewer,
            caps=caps,
            clock=clock,
            sleep=sleep,
        )
        assert isinstance(executor.audit, MemoryAuditLog)
        yield Bench(executor, MemoryEventStore(), executor.audit, http, sent, clock, slept)


async def an_order(b: Bench, qty: int = 5, lines: int = 1) -> dict[str, Any]:
    """Arguments for a valid purchase order, from an active supplier in the world."""
    suppliers = (await b.world("GET", "/erp/suppliers", params={"query": ""}))["suppliers"]
    supplier = next(s for s in suppliers if s["is_active"] and len(s["skus"]) >= lines)
    return {
        "supplier_id": supplier["supplier_id"],
        "items": [{"sku": sku, "qty": qty} for sku in supplier["skus"][:lines]],
        "dry_run": False,
        "idempotency_key": "model-chosen-key-0001",
    }


async def purchase_orders(b: Bench) -> list[dict[str, Any]]:
    """The purchase orders the world holds now."""
    return (await b.world("GET", "/erp/purchase-orders"))["purchase_orders"]
