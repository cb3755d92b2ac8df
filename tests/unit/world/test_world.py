"""The sandbox world over its HTTP API, in-process through an ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from agentlab.core.errors import ConfigError
from agentlab.world import World, build_world_app, default_world_fixture, load_world_fixture

T = TypeVar("T")
KEY = {"Idempotency-Key": "test-key-0000000001"}
ORDER = {"supplier_id": "SUP-000103", "items": [{"sku": "TONER-BK-05", "qty": 4}]}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def client(world: World | None = None) -> httpx.AsyncClient:
    app = build_world_app(world)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://world")


def test_a_commit_with_a_used_key_replays_its_answer_and_changes_nothing() -> None:
    async def scenario() -> None:
        async with client() as http:
            first = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            again = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            orders = (await http.get("/erp/purchase-orders")).json()["purchase_orders"]

            assert (first.status_code, again.status_code) == (201, 200)
            assert first.json()["replayed"] is False
            assert again.json() == {**first.json(), "replayed": True}
            assert [o["po_id"] for o in orders] == ["PO-000001"]
            assert first.json()["total_usd"] == 4 * 62.5

    run(scenario())


def test_the_same_key_for_another_request_is_a_conflict() -> None:
    async def scenario() -> None:
        async with client() as http:
            await http.post("/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY)
            other = {**ORDER, "items": [{"sku": "TONER-BK-05", "qty": 5}], "dry_run": False}
            conflict = await http.post("/erp/purchase-orders", json=other, headers=KEY)
            assert conflict.status_code == 409
            assert "another request" in conflict.json()["detail"]

    run(scenario())


def test_a_dry_run_changes_nothing_and_does_not_use_the_key() -> None:
    async def scenario() -> None:
        async with client() as http:
            preview = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": True}, headers=KEY
            )
            assert preview.status_code == 200
            assert preview.json()["po_id"] is None
            assert preview.json()["diff"]["erp.purchase_orders"]["added"][0]["total_usd"] == 250.0
            assert (await http.get("/_world/diff")).json() == {}
            committed = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            assert committed.status_code == 201

    run(scenario())


def test_a_write_without_a_key_is_refused() -> None:
    async def scenario() -> None:
        async with client() as http:
            response = await http.post("/erp/purchase-orders", json={**ORDER, "dry_run": False})
            assert response.status_code == 400
            assert "Idempotency-Key" in response.json()["detail"]
            short = await http.post(
                "/erp/purchase-orders",
                json={**ORDER, "dry_run": False},
                headers={"Idempotency-Key": "short"},
            )
            assert short.status_code == 400

    run(scenario())


@pytest.mark.parametrize(
    ("order", "detail"),
    [
        (
            {"supplier_id": "SUP-999999", "items": [{"sku": "TONER-BK-05", "qty": 1}]},
            "supplier_id: no supplier",
        ),
        (
            {"supplier_id": "SUP-000108", "items": [{"sku": "TONER-BK-OLD", "qty": 1}]},
            "is inactive",
        ),
        (
            {"supplier_id": "SUP-000103", "items": [{"sku": "PAPER-A4-500", "qty": 1}]},
            "items.0.sku: PAPER-A4-500 is not supplied",
        ),
        (
            {"supplier_id": "SUP-000103", "items": [{"sku": "NOPE-1", "qty": 1}]},
            "items.0.sku: no sku",
        ),
    ],
)
def test_business_rules_are_refused_naming_the_field(order: dict[str, Any], detail: str) -> None:
    async def scenario() -> None:
        async with client() as http:
            response = await http.post(
                "/erp/purchase-orders", json={**order, "dry_run": True}, headers=KEY
            )
            assert response.status_code == 422
            assert detail in response.json()["detail"]

    run(scenario())


def test_the_diff_names_what_a_commit_changed_and_reset_undoes_it() -> None:
    async def scenario() -> None:
        async with client() as http:
            await http.post("/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY)
            await http.post(
                "/helpdesk/tickets/TCK-000004/status",
                json={"status": "resolved", "dry_run": False},
                headers={"Idempotency-Key": "test-key-0000000002"},
            )
            diff = (await http.get("/_world/diff")).json()
            assert set(diff) == {"erp.purchase_orders", "helpdesk.tickets"}
            assert diff["erp.purchase_orders"]["added"][0]["po_id"] == "PO-000001"
            [changed] = diff["helpdesk.tickets"]["changed"]
            assert (changed["id"], changed["before"]["status"], changed["after"]["status"]) == (
                "TCK-000004",
                "open",
                "resolved",
            )
            await http.post("/_world/reset")
            assert (await http.get("/_world/diff")).json() == {}
            assert (await http.get("/_world/stats")).json()["side_effects"] == 0

    run(scenario())


def test_an_injected_fault_answers_before_anything_changes() -> None:
    async def scenario() -> None:
        async with client() as http:
            await http.post(
                "/_world/faults",
                json={
                    "method": "POST",
                    "path": "/erp/purchase-orders",
                    "status": 503,
                    "times": 1,
                    "retry_after_s": 2,
                },
            )
            failed = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            assert failed.status_code == 503
            assert failed.headers["Retry-After"] == "2"
            assert (await http.get("/_world/diff")).json() == {}
            ok = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            assert ok.status_code == 201

    run(scenario())


def test_requests_in_flight_are_counted_per_system() -> None:
    async def scenario() -> None:
        async with client() as http:
            await http.post("/_world/latency", json={"erp": 5})
            await asyncio.gather(
                *(http.get("/erp/suppliers") for _ in range(7)), http.get("/mail/outbox")
            )
            stats = (await http.get("/_world/stats")).json()
            assert stats["in_flight_max"]["erp"] == 7
            assert stats["in_flight_max"]["mail"] == 1
            assert stats["requests"] == 8

    run(scenario())


def test_mail_to_an_unknown_domain_bounces() -> None:
    async def scenario() -> None:
        async with client() as http:
            mail = {
                "to": ["a@example.co.jp", "b@nowhere.invalid"],
                "subject": "s",
                "body": "b",
                "dry_run": False,
            }
            response = await http.post("/mail/send", json=mail, headers=KEY)
            assert response.status_code == 422
            assert "to.1: b@nowhere.invalid bounced" in response.json()["detail"]
            assert (await http.get("/mail/outbox")).json()["messages"] == []

    run(scenario())


def _kb(tmp_path: Path) -> World:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "vpn.md").write_text(
        "---\ndoc_id: KB-1\ntitle: VPN setup\ndata_class: public\n---\nInstall the VPN client.\n"
    )
    (kb / "salary.md").write_text(
        "---\ndoc_id: KB-2\ntitle: Salary bands\ndata_class: confidential\n---\n"
        "VPN allowance and salary bands.\n"
    )
    fixture = default_world_fixture().model_copy(update={"kb_folder": str(kb)})
    return World(fixture)


def test_the_knowledge_base_returns_only_the_callers_data_classes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with client(_kb(tmp_path)) as http:
            public = (await http.get("/kb/search", params={"q": "vpn salary"})).json()["articles"]
            assert [a["doc_id"] for a in public] == ["KB-1"]
            cleared = (
                await http.get(
                    "/kb/search",
                    params={"q": "vpn salary"},
                    headers={"X-Data-Classes": "public,confidential"},
                )
            ).json()["articles"]
            assert {a["doc_id"] for a in cleared} == {"KB-1", "KB-2"}
            assert (await http.get("/kb/articles/KB-2")).status_code == 404
            fetched = await http.get(
                "/kb/articles/KB-2", headers={"X-Data-Classes": "confidential"}
            )
            assert fetched.json()["title"] == "Salary bands"

    run(scenario())


def test_an_rpa_outcome_is_the_same_in_two_fresh_worlds_and_some_fail() -> None:
    async def outcomes() -> list[tuple[str, str | None]]:
        async with client() as http:
            results = []
            for n in range(40):
                response = await http.post(
                    "/rpa/runs",
                    json={
                        "workflow": "invoice_entry",
                        "version": "1.2.0",
                        "dry_run": False,
                        "inputs": {
                            "supplier_id": "SUP-000103",
                            "invoice_no": f"INV-{n}",
                            "amount_usd": 10.0,
                        },
                    },
                    headers={"Idempotency-Key": f"rpa-key-{n:012d}"},
                )
                body = response.json()
                assert body["screenshot"]["media_type"] == "text/plain"
                results.append((body["status"], body["error_code"]))
            return results

    first, second = run(outcomes()), run(outcomes())
    assert first == second
    statuses = {status for status, _ in first}
    assert statuses == {"succeeded", "failed"}
    assert all(code is not None for status, code in first if status == "failed")


def test_rpa_inputs_are_checked_against_the_workflow() -> None:
    async def scenario() -> None:
        async with client() as http:
            missing = await http.post(
                "/rpa/runs",
                json={
                    "workflow": "vendor_master_update",
                    "version": "2.0.1",
                    "inputs": {},
                    "dry_run": True,
                },
                headers=KEY,
            )
            assert missing.status_code == 422
            assert "missing ['supplier_id']" in missing.json()["detail"]
            unknown = await http.post(
                "/rpa/runs",
                json={
                    "workflow": "vendor_master_update",
                    "version": "9.9.9",
                    "inputs": {},
                    "dry_run": True,
                },
                headers=KEY,
            )
            assert unknown.status_code == 404
            assert "2.0.1" in unknown.json()["detail"]  # the versions that exist

    run(scenario())


def test_a_bad_fixture_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(
        "erp:\n  suppliers:\n    - {supplier_id: SUP-12, name: A, country: JP}\n"
        "  inventory: []\nmail: {known_domains: []}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_world_fixture(path)
    assert f"{path}:3:" in str(caught.value)
    assert "erp.suppliers.0.supplier_id" in str(caught.value)


def test_the_default_fixture_holds_what_the_suites_rely_on() -> None:
    fixture = default_world_fixture()
    suppliers = {s.supplier_id: s for s in fixture.erp.suppliers}
    assert any(not s.is_active for s in suppliers.values())
    assert all(item.supplier_id in suppliers for item in fixture.erp.inventory)
    assert any(item.on_hand < item.reorder_point for item in fixture.erp.inventory)
    assert "example.co.jp" in fixture.mail.known_domains
    assert {w.name for w in fixture.rpa.workflows} >= {"invoice_entry", "vendor_master_update"}
