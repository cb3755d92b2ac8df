"""Many sandbox worlds behind one server: one per run, shared by every machine of a cluster.

A suite's runs each need a world of their own (its final state is graded against the
fixture), and runs spread over a cluster need that world where every machine reaches it,
so that a run retried on another machine after its first one died finds the writes the
first attempt made, and the world's idempotency keys keep them from being made twice.

``/t/<tenant>/...`` is the world API of tenant ``<tenant>`` (``/t/run-42/erp/inventory``,
``/t/run-42/_world/diff``); a tenant's world is made from the fixture on its first request.
The server also counts requests in flight per system across all tenants: the load the real
system would see, which the cluster's shared caps must keep under the policy's concurrency.

    GET /_tenants    {"tenants": n, "in_flight": {...}, "in_flight_max": {...},
                      "calls": {...}, "busy_s": {...}, "side_effects": n, "requests": n}
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentlab.core.clock import VirtualClock
from agentlab.world.app import Sleep, build_world_app
from agentlab.world.fixture import WorldFixture, default_world_fixture
from agentlab.world.state import SYSTEMS, World

TENANT = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
"""What a tenant's name may hold: an experiment, task and repetition fit."""


class WorldTenants:
    """An ASGI app serving one :class:`World` per tenant, made from ``fixture`` on demand.

    Args:
        fixture: Every tenant's starting state; the embedded default if None.
        fixture_path: Where the fixture came from, to find a relative ``kb_folder``.
        sleep: How each world waits its systems' modelled latency (``asyncio.sleep``).
        latency_ms: Each system's modelled service time, instead of the fixture's (most
            fixtures model none); for load tests of the caps.
        latency_scale: The share of the modelled latency really waited (1: all of it; 0.25
            compresses time four-fold). Responses still say the modelled latency.
    """

    def __init__(
        self,
        fixture: WorldFixture | None = None,
        *,
        fixture_path: Path | None = None,
        sleep: Sleep = asyncio.sleep,
        latency_ms: Mapping[str, int] | None = None,
        latency_scale: float = 1.0,
    ) -> None:
        if latency_scale < 0:
            raise ValueError(f"latency_scale must be >= 0, not {latency_scale}")
        self.fixture = fixture or default_world_fixture()
        self.fixture_path = fixture_path
        self._sleep = sleep
        self._latency_ms = dict(latency_ms or {})
        self._latency_scale = latency_scale
        self._apps: dict[str, tuple[World, ASGIApp]] = {}
        self._lock = threading.Lock()
        self.in_flight = dict.fromkeys(SYSTEMS, 0)
        self.in_flight_max = dict.fromkeys(SYSTEMS, 0)
        self.calls = dict.fromkeys(SYSTEMS, 0)
        self.busy_s = dict.fromkeys(SYSTEMS, 0.0)

    def world(self, tenant: str) -> World:
        """Tenant ``tenant``'s world, made from the fixture if it has none yet."""
        return self._tenant(tenant)[0]

    def tenants(self) -> list[str]:
        """The tenants that have a world, in the order they were made."""
        with self._lock:
            return list(self._apps)

    def stats(self) -> dict[str, Any]:
        """The load on the systems, all tenants together, and the writes applied.

        Per system: requests in flight now and at most, calls, and seconds spent serving
        them (the demand a run puts on a capped system, for the caps' bound).
        """
        with self._lock:
            worlds = [world for world, _ in self._apps.values()]
            return {
                "tenants": len(worlds),
                "in_flight": dict(self.in_flight),
                "in_flight_max": dict(self.in_flight_max),
                "calls": dict(self.calls),
                "busy_s": dict(self.busy_s),
                "side_effects": sum(world.side_effects for world in worlds),
                "requests": sum(world.requests for world in worlds),
            }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``/_tenants``, or hand the request to its tenant's world app."""
        if scope["type"] == "lifespan":
            return
        path = scope.get("path", "")
        if path.rstrip("/") == "/_tenants" and scope["type"] == "http":
            await JSONResponse(self.stats())(scope, receive, send)
            return
        parts = path.split("/", 3)  # "", "t", tenant, rest
        if len(parts) < 3 or parts[1] != "t" or not TENANT.fullmatch(parts[2]):
            await JSONResponse(
                {"detail": "no tenant: use /t/<tenant>/... (A-Z a-z 0-9 _ . : -, 1-128)"},
                status_code=404,
            )(scope, receive, send)
            return
        tenant, rest = parts[2], "/" + (parts[3] if len(parts) > 3 else "")
        _, app = self._tenant(tenant)
        prefix = f"/t/{tenant}"
        inner = {
            **scope,
            "path": rest,
            "raw_path": rest.encode(),
            "root_path": scope.get("root_path", "") + prefix,
        }
        system = rest.strip("/").split("/", 1)[0]
        if system not in SYSTEMS:
            await app(inner, receive, send)
            return
        self._enter(system)
        began = time.perf_counter()
        try:
            await app(inner, receive, send)
        finally:
            self._leave(system, time.perf_counter() - began)

    def _tenant(self, tenant: str) -> tuple[World, ASGIApp]:
        with self._lock:
            made = self._apps.get(tenant)
            if made is None:
                # The world keeps time of its own, as a recorded run's does: a virtual clock.
                world = World(self.fixture, fixture_path=self.fixture_path, clock=VirtualClock())
                if self._latency_ms:
                    world.set_latency(self._latency_ms)
                made = self._apps[tenant] = (world, build_world_app(world, sleep=self._wait))
            return made

    async def _wait(self, seconds: float) -> None:
        if self._latency_scale:
            await self._sleep(seconds * self._latency_scale)

    def _enter(self, system: str) -> None:
        with self._lock:
            self.in_flight[system] += 1
            self.in_flight_max[system] = max(self.in_flight_max[system], self.in_flight[system])

    def _leave(self, system: str, busy_s: float) -> None:
        with self._lock:
            self.in_flight[system] -= 1
            self.calls[system] += 1
            self.busy_s[system] += busy_s


def tenant_url(world_url: str, tenant: str) -> str:
    """The base URL of ``tenant``'s world on a :class:`WorldTenants` server at ``world_url``.

    Raises:
        ValueError: ``tenant`` is not a valid tenant name.
    """
    if not TENANT.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r}: 1-128 characters of A-Z a-z 0-9 _ . : -")
    return f"{world_url.rstrip('/')}/t/{tenant}"
