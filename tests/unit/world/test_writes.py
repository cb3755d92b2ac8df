"""Writes to the world: idempotency keys, dry-runs, refusals, and the diff they leave."""

from __future__ import annotations

from typing import Any

import pytest

from agentlab.world import World
from tests.unit.world._http import KEY, ORDER, client, key, run


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
            stats = (await http.get("/_world/stats")).json()

        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["replayed"] is False
        assert again.json() == {**first.json(), "replayed": True}
        assert [o["po_id"] for o in orders] == ["PO-000001"]
        assert first.json()["total_usd"] == 4 * 62.5
        assert stats["side_effects"] == 1

    run(scenario())


def test_the_same_key_for_another_request_is_a_conflict() -> None:
    async def scenario() -> None:
        async with client() as http:
            await http.post("/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY)
            other = {**ORDER, "items": [{"sku": "TONER-BK-05", "qty": 5}], "dry_run": False}
            conflict = await http.post("/erp/purchase-orders", json=other, headers=KEY)
            elsewhere = await http.post(
                "/helpdesk/tickets/TCK-000001/status",
                json={"status": "resolved", "dry_run": False},
                headers=KEY,
            )
            orders = (await http.get("/erp/purchase-orders")).json()["purchase_orders"]

        assert conflict.status_code == 409
        assert "another request" in conflict.json()["detail"]
        assert elsewhere.status_code == 409  # a key is one request, whichever the system
        assert [(o["po_id"], o["lines"][0]["qty"]) for o in orders] == [("PO-000001", 4)]

    run(scenario())


def test_a_dry_run_changes_nothing_and_does_not_use_the_key() -> None:
    world = World()
    before = world.snapshot()

    async def scenario() -> None:
        async with client(world) as http:
            preview = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": True}, headers=KEY
            )
            assert preview.status_code == 200
            body = preview.json()
            assert (body["po_id"], body["dry_run"], body["replayed"]) == (None, True, False)
            assert body["diff"]["erp.purchase_orders"]["added"][0]["total_usd"] == 250.0
            assert (await http.get("/_world/diff")).json() == {}
            assert world.snapshot() == before

            committed = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            assert committed.status_code == 201
            assert committed.json()["po_id"] == "PO-000001"

    run(scenario())


def test_a_write_without_a_valid_key_is_refused_even_as_a_dry_run() -> None:
    async def scenario() -> None:
        async with client() as http:
            missing = await http.post("/erp/purchase-orders", json={**ORDER, "dry_run": True})
            short = await http.post(
                "/erp/purchase-orders",
                json={**ORDER, "dry_run": False},
                headers={"Idempotency-Key": "short"},
            )
            spaces = await http.post(
                "/mail/send",
                json={"to": ["a@example.com"], "subject": "s", "body": "b", "dry_run": False},
                headers={"Idempotency-Key": "has spaces in the key"},
            )
            assert (await http.get("/_world/diff")).json() == {}

        assert [r.status_code for r in (missing, short, spaces)] == [400, 400, 400]
        assert "Idempotency-Key" in missing.json()["detail"]

    run(scenario())


@pytest.mark.parametrize(
    ("order", "detail"),
    [
        (
            {"supplier_id": "SUP-999999", "items": [{"sku": "TONER-BK-05", "qty": 1}]},
            "supplier_id: no supplier SUP-999999",
        ),
        (
            {"supplier_id": "SUP-000108", "items": [{"sku": "TONER-BK-OLD", "qty": 1}]},
            "supplier_id: supplier SUP-000108 is inactive",
        ),
        (
            {"supplier_id": "SUP-000103", "items": [{"sku": "PAPER-A4-500", "qty": 1}]},
            "items.0.sku: PAPER-A4-500 is not supplied",
        ),
        (
            {"supplier_id": "SUP-000103", "items": [{"sku": "NOPE-1", "qty": 1}]},
            "items.0.sku: no sku NOPE-1",
        ),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_business_rules_are_refused_naming_the_field(
    order: dict[str, Any], detail: str, dry_run: bool
) -> None:
    async def scenario() -> None:
        async with client() as http:
            response = await http.post(
                "/erp/purchase-orders", json={**order, "dry_run": dry_run}, headers=KEY
            )
            assert response.status_code == 422
            assert detail in response.json()["detail"]
            assert (await http.get("/_world/diff")).json() == {}

    run(scenario())


def test_a_malformed_body_is_a_422_whose_detail_names_the_field() -> None:
    async def scenario() -> None:
        async with client() as http:
            zero = await http.post(
                "/erp/purchase-orders",
                json={"supplier_id": "SUP-000103", "items": [{"sku": "X-1", "qty": 0}]},
                headers=KEY,
            )
            assert zero.status_code == 422
            detail = zero.json()["detail"]
            assert isinstance(detail, str)
            assert "items.0.qty: " in detail
            assert "dry_run: Field required" in detail

    run(scenario())


def test_a_refused_commit_leaves_its_key_free_for_the_corrected_request() -> None:
    async def scenario() -> None:
        async with client() as http:
            wrong = {"supplier_id": "SUP-000103", "items": [{"sku": "NOPE-1", "qty": 1}]}
            refused = await http.post(
                "/erp/purchase-orders", json={**wrong, "dry_run": False}, headers=KEY
            )
            fixed = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
        assert (refused.status_code, fixed.status_code) == (422, 201)

    run(scenario())


def test_the_diff_names_what_a_commit_changed_and_reset_undoes_it() -> None:
    async def scenario() -> None:
        async with client() as http:
            await http.post("/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY)
            await http.post(
                "/helpdesk/tickets/TCK-000004/status",
                json={"status": "resolved", "dry_run": False},
                headers=key(2),
            )
            diff = (await http.get("/_world/diff")).json()
            assert set(diff) == {"erp.purchase_orders", "helpdesk.tickets"}
            assert diff["erp.purchase_orders"]["added"][0]["po_id"] == "PO-000001"
            assert diff["erp.purchase_orders"]["removed"] == []
            [changed] = diff["helpdesk.tickets"]["changed"]
            assert (changed["id"], changed["before"]["status"], changed["after"]["status"]) == (
                "TCK-000004",
                "open",
                "resolved",
            )

            assert (await http.post("/_world/reset")).status_code == 200
            assert (await http.get("/_world/diff")).json() == {}
            assert (await http.get("/_world/stats")).json()["side_effects"] == 0
            # keys are forgotten and ids restart
            again = await http.post(
                "/erp/purchase-orders", json={**ORDER, "dry_run": False}, headers=KEY
            )
            assert (again.status_code, again.json()["po_id"]) == (201, "PO-000001")

    run(scenario())


def test_a_ticket_is_opened_commented_and_replayed_once() -> None:
    async def scenario() -> None:
        async with client() as http:
            ticket = {
                "title": "Keyboard missing keys",
                "body": "The Q key fell off.",
                "requester": "kenji@example.co.jp",
                "priority": "low",
            }
            preview = await http.post(
                "/helpdesk/tickets", json={**ticket, "dry_run": True}, headers=key(1)
            )
            opened = await http.post(
                "/helpdesk/tickets", json={**ticket, "dry_run": False}, headers=key(1)
            )
            comment = {"body": "A spare keyboard is on its way.", "dry_run": False}
            path = "/helpdesk/tickets/TCK-000011/comments"
            first = await http.post(path, json=comment, headers=key(2))
            second = await http.post(path, json=comment, headers=key(2))
            stored = (await http.get("/helpdesk/tickets/TCK-000011")).json()
            missing = await http.post(
                "/helpdesk/tickets/TCK-999999/comments", json=comment, headers=key(3)
            )

        assert preview.json()["ticket_id"] == opened.json()["ticket_id"] == "TCK-000011"
        assert opened.json()["status"] == "open"
        assert (first.status_code, second.status_code) == (201, 200)
        [change] = first.json()["diff"]["helpdesk.tickets"]["changed"]
        assert (len(change["before"]["comments"]), len(change["after"]["comments"])) == (0, 1)
        assert [c["body"] for c in stored["comments"]] == ["A spare keyboard is on its way."]
        assert missing.status_code == 404

    run(scenario())


def test_mail_is_sent_once_to_known_domains() -> None:
    async def scenario() -> None:
        async with client() as http:
            mail = {"to": ["buyer@example.co.jp"], "subject": "PO", "body": "Attached."}
            sent = await http.post("/mail/send", json={**mail, "dry_run": False}, headers=KEY)
            again = await http.post("/mail/send", json={**mail, "dry_run": False}, headers=KEY)
            outbox = (await http.get("/mail/outbox")).json()["messages"]

        assert sent.status_code == 201
        assert (sent.json()["message_id"], sent.json()["accepted"]) == (
            "MSG-000001",
            ["buyer@example.co.jp"],
        )
        assert again.json()["replayed"] is True
        assert [m["message_id"] for m in outbox] == ["MSG-000001"]

    run(scenario())


@pytest.mark.parametrize(
    ("to", "detail"),
    [
        (["a@example.co.jp", "b@nowhere.invalid"], "to.1: b@nowhere.invalid bounced"),
        (["not-an-address"], "to.0: 'not-an-address' is not an email address"),
        ([], "to: at least one recipient"),
    ],
)
def test_mail_the_mail_system_cannot_deliver_is_refused(to: list[str], detail: str) -> None:
    async def scenario() -> None:
        async with client() as http:
            mail = {"to": to, "subject": "s", "body": "b", "dry_run": False}
            response = await http.post("/mail/send", json=mail, headers=KEY)
            assert response.status_code == 422
            assert detail in response.json()["detail"]
            assert (await http.get("/mail/outbox")).json()["messages"] == []

    run(scenario())
