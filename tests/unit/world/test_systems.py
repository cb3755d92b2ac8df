"""What each system answers: ERP reads, the knowledge base's class filter, RPA outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentlab.core.errors import ConfigError
from agentlab.world import World, default_world_fixture
from agentlab.world.fixture import Rpa, Workflow
from tests.unit.world._http import KEY, client, key, run


def test_suppliers_are_found_by_name_or_id_with_their_skus() -> None:
    async def scenario() -> None:
        async with client() as http:
            by_name = (await http.get("/erp/suppliers", params={"query": "PAPER"})).json()
            by_id = (await http.get("/erp/suppliers", params={"query": "sup-000108"})).json()
            everyone = (await http.get("/erp/suppliers")).json()["suppliers"]
            one = (await http.get("/erp/suppliers/SUP-000102")).json()
            missing = await http.get("/erp/suppliers/SUP-999999")
        assert [s["supplier_id"] for s in by_name["suppliers"]] == ["SUP-000102"]
        assert by_id["suppliers"][0]["is_active"] is False
        assert len(everyone) == len(default_world_fixture().erp.suppliers)
        assert one["skus"] == ["PAPER-A4-500", "PAPER-A3-500", "ENVELOPE-C4"]
        assert missing.status_code == 404

    run(scenario())


def test_inventory_lists_what_is_below_its_reorder_point() -> None:
    async def scenario() -> None:
        async with client() as http:
            low = (await http.get("/erp/inventory", params={"below_reorder": "true"})).json()
            toner = (await http.get("/erp/inventory", params={"sku": "TONER-CY-05"})).json()
        assert low["items"]
        assert all(i["on_hand"] < i["reorder_point"] for i in low["items"])
        assert "TONER-BK-05" in {i["sku"] for i in low["items"]}
        assert toner["items"] == [
            {
                "sku": "TONER-CY-05",
                "name": "Toner cyan 5k pages",
                "on_hand": 12,
                "reorder_point": 6,
                "unit_price_usd": 71.0,
                "supplier_id": "SUP-000103",
            }
        ]

    run(scenario())


def _article(folder: Path, name: str, front: str, text: str) -> None:
    (folder / name).write_text(f"---\n{front}---\n{text}\n", encoding="utf-8")


def _kb_world(tmp_path: Path) -> World:
    kb = tmp_path / "kb"
    kb.mkdir()
    _article(kb, "vpn.md", "doc_id: KB-1\ntitle: VPN setup\ndata_class: public\n", "Install it.")
    _article(
        kb,
        "salary.md",
        "doc_id: KB-2\ntitle: Salary bands\ndata_class: confidential\ntags: [vpn]\n",
        "Allowances and salary bands.\n\n---\n\nA rule above is not front matter.",
    )
    _article(
        kb,
        "remote.md",
        "doc_id: KB-3\ntitle: Remote work\ndata_class: internal\n",
        "# Remote work\n\nUse the VPN.\n\n## Abroad\nAsk first.",
    )
    fixture = default_world_fixture().model_copy(update={"kb_folder": str(kb)})
    return World(fixture)


def test_the_knowledge_base_returns_only_the_callers_data_classes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with client(_kb_world(tmp_path)) as http:

            async def search(classes: str | None) -> list[Any]:
                headers = {"X-Data-Classes": classes} if classes is not None else {}
                answer = await http.get("/kb/search", params={"q": "vpn"}, headers=headers)
                return [a["doc_id"] for a in answer.json()["articles"]]

            assert await search(None) == ["KB-1"]
            assert await search("") == ["KB-1"]
            assert await search("public, internal") == ["KB-1", "KB-3"]
            # title and tag words weigh twice a body word; ties go by doc_id
            assert await search("internal,confidential,public") == ["KB-1", "KB-2", "KB-3"]

            assert (await http.get("/kb/articles/KB-2")).status_code == 404
            restricted = await http.get("/kb/articles/KB-2", headers={"X-Data-Classes": "public"})
            # the same answer as for an article that does not exist: no hint that it does
            assert (restricted.status_code, restricted.json()) == (
                404,
                {"detail": "no article KB-2"},
            )
            fetched = await http.get(
                "/kb/articles/KB-2", headers={"X-Data-Classes": "confidential"}
            )
            assert fetched.json()["title"] == "Salary bands"
            assert fetched.json()["content"].endswith("A rule above is not front matter.")
            limited = await http.get(
                "/kb/search",
                params={"q": "vpn", "limit": 1},
                headers={"X-Data-Classes": "public,internal,confidential"},
            )
            [hit] = limited.json()["articles"]
            assert set(hit) == {"doc_id", "title", "data_class", "snippet", "score"}
            internal = await http.get(
                "/kb/search", params={"q": "abroad"}, headers={"X-Data-Classes": "internal"}
            )
            assert internal.json()["articles"][0]["snippet"] == "Use the VPN. Abroad Ask first."

    run(scenario())


def test_a_bad_article_is_reported_with_file_and_line(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    _article(kb, "bad.md", "doc_id: KB-1\ntitle: Fine\ndata_class: Not Lower\n", "Text.")
    fixture = default_world_fixture().model_copy(update={"kb_folder": str(kb)})
    with pytest.raises(ConfigError) as caught:
        World(fixture)
    assert f"{kb / 'bad.md'}:4: field 'data_class'" in str(caught.value)


def _rpa_call(n: int, *, version: str = "1.2.0", supplier: str = "SUP-000103") -> dict[str, Any]:
    return {
        "workflow": "invoice_entry",
        "version": version,
        "dry_run": False,
        "inputs": {"supplier_id": supplier, "invoice_no": f"INV-{n}", "amount_usd": 10.0},
    }


def test_an_rpa_outcome_is_the_same_in_two_fresh_worlds_and_some_fail() -> None:
    async def outcomes() -> list[tuple[str, str | None, str]]:
        async with client() as http:
            results = []
            for n in range(40):
                response = await http.post("/rpa/runs", json=_rpa_call(n), headers=key(n))
                body = response.json()
                assert body["screenshot"]["media_type"] == "text/plain"
                results.append((body["status"], body["error_code"], body["screenshot"]["content"]))
            return results

    first, second = run(outcomes()), run(outcomes())
    assert first == second
    assert {status for status, _, _ in first} == {"succeeded", "failed"}
    for status, code, screen in first:
        assert (code is None) == (status == "succeeded")
        assert screen.isascii()
        assert (f"!! {code}" if code else "OK") in screen


def test_a_succeeded_rpa_run_changes_the_erp_as_its_dry_run_said() -> None:
    always = Workflow(
        name="vendor_master_update",
        version="2.0.1",
        description="Reactivate a supplier.",
        inputs={"supplier_id": "str"},
        failure_rate=0.0,
    )
    world = World(default_world_fixture().model_copy(update={"rpa": Rpa(workflows=(always,))}))
    call = {"workflow": "vendor_master_update", "version": "2.0.1"}

    async def scenario() -> None:
        async with client(world) as http:
            inputs = {"supplier_id": "SUP-000108"}
            preview = await http.post(
                "/rpa/runs", json={**call, "inputs": inputs, "dry_run": True}, headers=KEY
            )
            assert world.erp.suppliers["SUP-000108"]["is_active"] is False
            done = await http.post(
                "/rpa/runs", json={**call, "inputs": inputs, "dry_run": False}, headers=KEY
            )
            unknown = await http.post(
                "/rpa/runs",
                json={**call, "inputs": {"supplier_id": "SUP-999999"}, "dry_run": False},
                headers=key(2),
            )
            diff = (await http.get("/_world/diff")).json()

        assert preview.json()["diff"]["erp.suppliers"] == done.json()["diff"]["erp.suppliers"]
        [change] = diff["erp.suppliers"]["changed"]
        assert (change["id"], change["before"]["is_active"], change["after"]["is_active"]) == (
            "SUP-000108",
            False,
            True,
        )
        assert (unknown.json()["status"], unknown.json()["error_code"]) == (
            "failed",
            "E_VENDOR_NOT_FOUND",
        )
        assert [r["rpa_run_id"] for r in diff["rpa.runs"]["added"]] == ["RPA-000001", "RPA-000002"]

    run(scenario())


def test_only_succeeded_invoice_runs_enter_invoices() -> None:
    async def scenario() -> None:
        async with client() as http:
            answers = [
                (await http.post("/rpa/runs", json=_rpa_call(n), headers=key(n))).json()
                for n in range(20)
            ]
            diff = (await http.get("/_world/diff")).json()
        entered = {i["invoice_no"] for i in diff["erp.invoices"]["added"]}
        succeeded = {a["inputs"]["invoice_no"] for a in answers if a["status"] == "succeeded"}
        assert entered == succeeded
        assert len(succeeded) < 20

    run(scenario())


@pytest.mark.parametrize(
    ("call", "status", "detail"),
    [
        ({"workflow": "vendor_master_update", "version": "2.0.1", "inputs": {}}, 422, "missing"),
        (
            {
                "workflow": "vendor_master_update",
                "version": "2.0.1",
                "inputs": {"supplier_id": "SUP-000101", "force": True},
            },
            422,
            "unexpected ['force']",
        ),
        (
            {"workflow": "vendor_master_update", "version": "2.0.1", "inputs": {"supplier_id": 7}},
            422,
            "inputs.supplier_id: expected str, got int",
        ),
        (
            {"workflow": "vendor_master_update", "version": "9.9.9", "inputs": {}},
            404,
            "versions: ['2.0.1']",
        ),
        ({"workflow": "nope", "version": "1.0.0", "inputs": {}}, 404, "no workflow nope 1.0.0"),
    ],
)
def test_rpa_calls_are_checked_against_the_workflow(
    call: dict[str, Any], status: int, detail: str
) -> None:
    async def scenario() -> None:
        async with client() as http:
            response = await http.post("/rpa/runs", json={**call, "dry_run": True}, headers=KEY)
            assert response.status_code == status
            assert detail in response.json()["detail"]

    run(scenario())


def test_the_workflow_catalogue_lists_every_version() -> None:
    async def scenario() -> None:
        async with client() as http:
            return (await http.get("/rpa/workflows")).json()["workflows"]

    workflows = run(scenario())
    assert {(w["name"], w["version"]) for w in workflows} == {
        ("invoice_entry", "1.2.0"),
        ("invoice_entry", "1.3.0"),
        ("vendor_master_update", "2.0.1"),
    }
    assert workflows[0]["inputs"] == {
        "supplier_id": "str",
        "invoice_no": "str",
        "amount_usd": "float",
    }
