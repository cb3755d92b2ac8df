"""A world per tenant behind one app: isolation, idempotency per tenant, load across them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agentlab.world.tenants import WorldTenants, tenant_url
from tests.unit.world._http import KEY, ORDER, Gate, run


def _client(tenants: WorldTenants) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=tenants), base_url="http://w")


def test_each_tenant_has_a_world_of_its_own() -> None:
    tenants = WorldTenants()

    async def scenario() -> tuple[dict, dict]:
        async with _client(tenants) as http:
            made = await http.post(
                "/t/run-a/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            assert made.status_code == 201
            a = (await http.get("/t/run-a/_world/diff")).json()
            b = (await http.get("/t/run-b/_world/diff")).json()
            return a, b

    a, b = run(scenario())
    assert a["erp.purchase_orders"]["added"][0]["po_id"] == "PO-000001"
    assert b == {}
    assert tenants.tenants() == ["run-a", "run-b"]
    assert tenants.world("run-a").side_effects == 1
    assert tenants.world("run-b").side_effects == 0


def test_a_key_replayed_in_its_tenant_commits_once_and_another_tenant_is_untouched() -> None:
    tenants = WorldTenants()
    body = {**ORDER, "dry_run": False}

    async def scenario() -> list[httpx.Response]:
        async with _client(tenants) as http:
            return [
                await http.post("/t/a/erp/purchase-orders", json=body, headers=KEY),
                await http.post("/t/a/erp/purchase-orders", json=body, headers=KEY),
                await http.post("/t/b/erp/purchase-orders", json=body, headers=KEY),
            ]

    first, again, other = run(scenario())
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert other.json()["replayed"] is False  # a key is a tenant's own
    assert tenants.world("a").side_effects == 1
    assert tenants.stats()["side_effects"] == 2


def test_requests_in_flight_are_counted_across_tenants() -> None:
    gate = Gate(expected=3)
    tenants = WorldTenants(sleep=gate, latency_ms={"erp": 400})

    async def scenario() -> None:
        async with _client(tenants) as http:
            await asyncio.gather(
                *(http.get(f"/t/{name}/erp/inventory") for name in ("a", "b", "c")),
                http.get("/t/a/kb/search", params={"q": "vpn"}),
            )

    run(scenario())
    stats = tenants.stats()
    assert stats["in_flight_max"]["erp"] == 3  # three worlds, one system's load
    assert stats["in_flight"]["erp"] == 0
    assert stats["tenants"] == 3
    assert stats["calls"]["erp"] == 3
    assert stats["calls"]["kb"] == 1
    assert gate.seconds == [0.4, 0.4, 0.4]


def test_latency_is_waited_in_the_scale_given_and_said_in_full() -> None:
    gate = Gate(expected=1)
    tenants = WorldTenants(sleep=gate, latency_ms={"erp": 400}, latency_scale=0.25)

    async def scenario() -> httpx.Response:
        async with _client(tenants) as http:
            return await http.get("/t/a/erp/inventory")

    response = run(scenario())
    assert gate.seconds == [0.1]
    assert response.headers["x-agentlab-simulated-latency-ms"] == "400"


@pytest.mark.parametrize("path", ["/erp/inventory", "/t/", "/t/bad name/erp/inventory", "/x/a"])
def test_a_request_without_a_valid_tenant_is_a_404_that_says_the_form(path: str) -> None:
    async def scenario() -> httpx.Response:
        async with _client(WorldTenants()) as http:
            return await http.get(path)

    response = run(scenario())
    assert response.status_code == 404
    assert "/t/<tenant>/" in response.json()["detail"]


def test_stats_are_served_and_tenant_urls_are_checked() -> None:
    async def scenario() -> dict:
        async with _client(WorldTenants()) as http:
            await http.get("/t/a/erp/inventory")
            return (await http.get("/_tenants")).json()

    assert run(scenario())["requests"] == 1
    assert tenant_url("http://h:1/", "exp-1.po-toner.r0") == "http://h:1/t/exp-1.po-toner.r0"
    with pytest.raises(ValueError, match="tenant"):
        tenant_url("http://h:1", "a/b")
