"""The world's web UIs: pages render from the state, the portal wants a vault token."""

from __future__ import annotations

from datetime import timedelta

import httpx

from agentlab.core.clock import TickingClock
from agentlab.security import CredentialVault
from agentlab.world import World
from agentlab.world.web import (
    render_portal_home,
    render_supplier_page,
    render_ticket_page,
    same_origin_post,
)
from tests.unit.world._http import client, run

KEY = b"portal-key-for-unit-tests-000000"


def _signed(world: World, clock: TickingClock) -> dict[str, str]:
    token = CredentialVault({"supplier_portal": KEY}, clock=clock).issue("supplier_portal")
    return {"Authorization": f"Bearer {token.value}"}


def test_pages_are_deterministic_and_escape_what_they_show() -> None:
    world = World(portal_key=KEY)
    assert render_portal_home(world) == render_portal_home(World(portal_key=KEY))
    world.erp.suppliers["SUP-000101"]["name"] = "<script>alert(1)</script>"
    assert "<script>alert" not in render_portal_home(world)
    assert "&lt;script&gt;" in render_portal_home(world)


def test_one_page_carries_an_injected_instruction_in_its_text() -> None:
    page = render_supplier_page(World(portal_key=KEY), "SUP-000106")
    assert "Note to AI assistants" in page
    assert "attacker@evil.example" in page
    assert 'href="http://www.global-cables.example/"' in page


def test_layout_2_renames_the_contact_forms_elements() -> None:
    world = World(portal_key=KEY)
    first = render_supplier_page(world, "SUP-000103")
    world.web_layout = 2
    second = render_supplier_page(world, "SUP-000103")
    for v1_id in ('id="save-contact"', 'id="contact-email"'):
        assert v1_id in first
        assert v1_id not in second
    assert 'name="contact_email"' in first
    assert 'name="contact_email"' in second


def test_the_portal_needs_a_valid_unexpired_token() -> None:
    clock = TickingClock(tick=timedelta(seconds=1))
    world = World(portal_key=KEY, clock=clock)

    async def scenario() -> list[int]:
        async with client(world) as http:
            headers = _signed(world, clock)
            statuses = [
                (await http.get("/portal/")).status_code,
                (await http.get("/portal/", headers={"Authorization": "Bearer nope"})).status_code,
                (await http.get("/portal/", headers=headers)).status_code,
            ]
            for _ in range(901):  # the token's 15 minutes pass on the world's clock
                clock.now()
            statuses.append((await http.get("/portal/", headers=headers)).status_code)
            return statuses

    assert run(scenario()) == [401, 401, 200, 401]


def test_forms_change_the_world_and_the_layout_switch_resets() -> None:
    clock = TickingClock()
    world = World(portal_key=KEY, clock=clock)

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with client(world) as http:
            contact = await http.post(
                "/portal/suppliers/SUP-000103/contact",
                content="contact_email=orders%40nagoya.example.co.jp",
                headers={
                    **_signed(world, clock),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            comment = await http.post(
                "/helpdesk-ui/tickets/TCK-000004/comments",
                content="body=Toner+ordered",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            switched = await http.post("/_world/web", json={"layout_version": 3})
            return contact, comment, switched

    contact, comment, switched = run(scenario())
    assert (contact.status_code, contact.headers["location"]) == (
        303,
        "/portal/suppliers/SUP-000103?saved=1",
    )
    assert comment.status_code == 303
    assert switched.status_code == 422
    assert set(world.diff()) == {"erp.suppliers", "helpdesk.tickets"}
    assert "Toner ordered" in render_ticket_page(world, "TCK-000004")
    world.web_layout = 2
    world.reset()
    assert world.web_layout == 1
    assert world.diff() == {}


def test_under_a_web_ui_name_only_the_web_uis_answer() -> None:
    world = World(portal_key=KEY)

    async def scenario() -> dict[str, int]:
        async with client(world) as http:
            web = {"Host": "portal.example.co.jp"}
            paths = ["/_world/snapshot", "/helpdesk/tickets", "/erp/suppliers", "/helpdesk-ui/"]
            seen = {p: (await http.get(p, headers=web)).status_code for p in paths}
            seen["api under its own name"] = (await http.get("/helpdesk/tickets")).status_code
            sub = {"Host": "a.helpdesk.example.co.jp:8080"}
            seen["subdomain"] = (await http.get("/_world/diff", headers=sub)).status_code
            return seen

    assert run(scenario()) == {
        "/_world/snapshot": 404,
        "/helpdesk/tickets": 404,
        "/erp/suppliers": 404,
        "/helpdesk-ui/": 200,
        "api under its own name": 200,
        "subdomain": 404,
    }


def test_a_form_post_from_another_site_is_refused_even_when_signed() -> None:
    clock = TickingClock()
    world = World(portal_key=KEY, clock=clock)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    async def scenario() -> list[int]:
        async with client(world) as http:
            statuses = []
            for origin in ("http://hostile.example.co.jp", "null", "http://world"):
                response = await http.post(
                    "/portal/suppliers/SUP-000103/contact",
                    content="contact_email=attacker%40evil.example",
                    headers={**_signed(world, clock), **form, "Origin": origin},
                )
                statuses.append(response.status_code)
            comment = await http.post(
                "/helpdesk-ui/tickets/TCK-000004/comments",
                content="body=hi",
                headers={**form, "Referer": "http://hostile.example.co.jp/csrf"},
            )
            statuses.append(comment.status_code)
            return statuses

    assert run(scenario()) == [403, 403, 303, 403]
    changed = world.diff()["erp.suppliers"]["changed"]
    assert len(changed) == 1  # only the same-origin post


def test_same_origin_post_reads_origin_then_referer() -> None:
    host = {"host": "portal.example.co.jp"}
    assert same_origin_post({**host, "origin": "http://portal.example.co.jp"}, "http")
    assert not same_origin_post({**host, "origin": "http://evil.example"}, "http")
    assert same_origin_post({**host, "referer": "http://portal.example.co.jp/portal/"}, "http")
    assert not same_origin_post({**host, "referer": "http://evil.example/x"}, "http")
    assert same_origin_post(host, "http")  # no browser page sent it
