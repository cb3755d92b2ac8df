"""The admin API under /_world: faults, latency, statistics and snapshots."""

from __future__ import annotations

import asyncio

from agentlab.world import World
from tests.unit.world._http import KEY, ORDER, Gate, client, run


def test_an_injected_fault_answers_before_anything_changes_then_runs_out() -> None:
    async def scenario() -> None:
        async with client() as http:
            armed = await http.post(
                "/_world/faults",
                json={
                    "method": "POST",
                    "path": "/erp/purchase-orders",
                    "status": 503,
                    "times": 2,
                    "retry_after_s": 2,
                },
            )
            assert armed.status_code == 200
            failures = [
                await http.post(
                    "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
                )
                for _ in range(2)
            ]
            assert [f.status_code for f in failures] == [503, 503]
            assert failures[0].headers["Retry-After"] == "2"
            assert (await http.get("/_world/diff")).json() == {}
            # another path is untouched, and the key was never used by the faulted calls
            assert (await http.get("/erp/purchase-orders")).status_code == 200
            ok = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            assert ok.status_code == 201

    run(scenario())


def test_faults_on_reads_and_clearing_them() -> None:
    async def scenario() -> None:
        async with client() as http:
            await http.post(
                "/_world/faults",
                json={"method": "get", "path": "/kb/search", "status": 429, "times": 5},
            )
            limited = await http.get("/kb/search", params={"q": "vpn"})
            assert limited.status_code == 429
            assert "Retry-After" not in limited.headers
            assert (await http.delete("/_world/faults")).status_code == 200
            assert (await http.get("/kb/search", params={"q": "vpn"})).status_code == 200

    run(scenario())


def test_in_flight_max_counts_requests_that_overlap() -> None:
    gate = Gate(expected=50)

    async def scenario() -> None:
        async with client(sleep=gate) as http:
            await http.post("/_world/latency", json={"erp": 20})
            answers = await asyncio.gather(
                *(http.get("/erp/suppliers") for _ in range(50)), http.get("/mail/outbox")
            )
            assert {a.status_code for a in answers} == {200}
            stats = (await http.get("/_world/stats")).json()
        assert stats["in_flight_max"] == {"erp": 50, "mail": 1, "helpdesk": 0, "kb": 0, "rpa": 0}
        assert stats["requests"] == 51
        assert gate.seconds == [0.02] * 50  # only the ERP waits, as long as it was told

    run(scenario())


def test_in_flight_max_shows_a_callers_concurrency_cap() -> None:
    gate = Gate(expected=5)

    async def scenario() -> None:
        cap = asyncio.Semaphore(5)
        async with client(sleep=gate) as http:
            await http.post("/_world/latency", json={"erp": 1})

            async def capped_call() -> int:
                async with cap:
                    return (await http.get("/erp/inventory")).status_code

            assert set(await asyncio.gather(*(capped_call() for _ in range(50)))) == {200}
            stats = (await http.get("/_world/stats")).json()
        assert stats["in_flight_max"]["erp"] == 5
        assert stats["requests"] == 50

    run(scenario())


def test_requests_one_after_another_are_never_counted_as_overlapping() -> None:
    async def scenario() -> None:
        async with client() as http:
            for _ in range(3):
                await http.get("/erp/suppliers", params={"query": "tokyo"})
            before_reset = (await http.get("/_world/stats")).json()
            await http.post("/_world/reset")
            after_reset = (await http.get("/_world/stats")).json()
        assert (before_reset["requests"], before_reset["in_flight_max"]["erp"]) == (3, 1)
        assert after_reset == {
            "requests": 0,
            "side_effects": 0,
            "in_flight_max": dict.fromkeys(("erp", "mail", "helpdesk", "kb", "rpa"), 0),
        }

    run(scenario())


def test_latency_of_an_unknown_system_is_refused() -> None:
    async def scenario() -> None:
        async with client() as http:
            refused = await http.post("/_world/latency", json={"crm": 5})
            changed = await http.post("/_world/latency", json={"rpa": 7})
        assert refused.status_code == 422
        assert "crm" in refused.json()["detail"]
        assert changed.json()["rpa"] == 7

    run(scenario())


def test_the_snapshot_holds_every_system_and_matches_the_python_api() -> None:
    world = World()

    async def scenario() -> None:
        async with client(world) as http:
            await http.post("/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY)
            snapshot = (await http.get("/_world/snapshot")).json()
            diff = (await http.get("/_world/diff")).json()
        assert snapshot == world.snapshot()
        assert diff == world.diff()
        assert set(snapshot) == {"erp", "mail", "helpdesk", "kb", "rpa"}
        assert [o["po_id"] for o in snapshot["erp"]["purchase_orders"]] == ["PO-000001"]
        assert len(snapshot["erp"]["suppliers"]) == len(world.fixture.erp.suppliers)

    run(scenario())
