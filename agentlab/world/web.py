"""The world's web UIs: a supplier portal and a helpdesk UI, as server-rendered HTML.

What a browser tool operates, over real HTTP, next to the JSON APIs the other tools use:

* ``/portal/`` -- the supplier portal. Every page needs a sign-in token from the credential
  vault (``Authorization: Bearer <token>``, checked with the world's ``portal_key`` and
  clock); without one it answers 401. It lists suppliers and their notices, and each
  supplier's page has a contact form (``POST``, changes the ERP's vendor master record), a
  file input for certificates (which a governed browser must refuse to use), and a link to
  the supplier's own website, off the sandbox's domain.
* ``/helpdesk-ui/`` -- the helpdesk: the ticket list, and a page per ticket with a comment
  form (``POST``, adds the comment, as ``POST /helpdesk/tickets/{id}/comments`` does).

Pages are pure functions of the world's state, so the same state renders the same bytes.
The supplier pages have two layouts (``web.layout_version`` in the fixture, switched at run
time with ``POST /_world/web``): version 2 renames the contact form's element ids, so a
selector written against version 1 stops matching.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agentlab.core.tokens import verify_token
from agentlab.world.errors import WorldError
from agentlab.world.state import World

PORTAL_CREDENTIAL = "supplier_portal"
"""The vault credential the supplier portal accepts tokens of."""
LAYOUTS = (1, 2)
WEB_DOMAINS = ("example.co.jp",)
"""The names a browser reaches the world under (and their subdomains): a request for one of
them may only reach the web UIs, never the JSON APIs or ``/_world`` (see ``build_world_app``)."""
WEB_UI_PREFIXES = ("/portal/", "/helpdesk-ui/")
"""The paths of the web UIs; everything else is the JSON APIs and the admin endpoints."""


def is_web_host(host_header: str, web_domains: tuple[str, ...] = WEB_DOMAINS) -> bool:
    """True when a ``Host`` header names one of ``web_domains`` or a subdomain of one."""
    host = host_header.strip().lower()
    if host.startswith("["):  # an IPv6 literal is never a web UI's name
        return False
    host = host.partition(":")[0].rstrip(".")
    return any(host == d or host.endswith("." + d) for d in web_domains)


def is_web_ui_path(path: str) -> bool:
    """True for a path of the portal or the helpdesk UI (``/portal`` and ``/portal/...``)."""
    return any(path == p.rstrip("/") or path.startswith(p) for p in WEB_UI_PREFIXES)


def same_origin_post(headers: Mapping[str, str], scheme: str) -> bool:
    """True unless a browser says the POST came from another site.

    Browsers send ``Origin`` on every POST (``null`` from an opaque origin), and usually a
    ``Referer``; either must name the host the request went to. A client that sends neither
    (a script, a test) is not a browser page and cannot be forged into posting, so it passes.
    """
    expected = f"{scheme}://{headers.get('host', '')}".lower()
    origin = headers.get("origin")
    if origin is not None:
        return origin.lower() == expected
    referer = headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == expected
    return True


def page(title: str, body: str) -> str:
    """A whole HTML page around ``body`` (already escaped)."""
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        "<style>body{font-family:sans-serif;margin:24px;max-width:760px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        ".notice{background:#fff7d6;padding:8px;border:1px solid #e0c060}</style>"
        f"</head><body>\n{body}\n</body></html>\n"
    )


# -- the supplier portal -------------------------------------------------------------------------


def render_portal_home(world: World) -> str:
    """The portal's home: every supplier, and the notices suppliers posted."""
    rows = "".join(
        f'<tr><td><a class="supplier" href="/portal/suppliers/{escape(s["supplier_id"])}">'
        f"{escape(s['name'])}</a></td><td>{escape(s['supplier_id'])}</td>"
        f"<td>{escape(s['country'])}</td><td>{'active' if s['is_active'] else 'inactive'}</td>"
        "</tr>"
        for s in world.erp.suppliers.values()
    )
    notes = world.fixture.web.supplier_notes
    notices = "".join(
        f'<li class="notice"><b>{escape(world.erp.suppliers[sid]["name"])}:</b> {escape(text)}</li>'
        for sid, text in sorted(notes.items())
        if sid in world.erp.suppliers
    )
    body = (
        '<h1 id="portal-title">Supplier portal</h1>\n'
        '<table id="suppliers"><tr><th>Supplier</th><th>Id</th><th>Country</th>'
        f"<th>Status</th></tr>{rows}</table>\n"
        f'<h2>Notices from suppliers</h2><ul id="notices">{notices}</ul>\n'
        '<p><a id="helpdesk-link" href="/helpdesk-ui/">IT helpdesk</a></p>'
    )
    return page("Supplier portal", body)


def render_supplier_page(world: World, supplier_id: str, *, saved: bool = False) -> str:
    """One supplier's page, in the world's current layout.

    Raises:
        WorldError: 404 for an unknown supplier.
    """
    supplier = world.erp.supplier(supplier_id)
    web = world.fixture.web
    skus = "".join(
        f"<tr><td>{escape(i['sku'])}</td><td>{escape(i['name'])}</td>"
        f"<td>{i['unit_price_usd']:.2f}</td></tr>"
        for i in world.erp.inventory.values()
        if i["supplier_id"] == supplier_id
    )
    note = web.supplier_notes.get(supplier_id)
    website = web.supplier_websites.get(supplier_id)
    contact = supplier.get("contact_email") or "(none on file)"
    parts = [
        f'<h1 id="supplier-name">{escape(supplier["name"])}</h1>',
        f'<p id="supplier-id">{escape(supplier_id)} - {escape(supplier["country"])}</p>',
        f'<p>Contact: <span id="contact-current">{escape(contact)}</span></p>',
        '<p id="saved" class="notice">Contact saved.</p>' if saved else "",
        f'<div class="notice" id="supplier-note">{escape(note)}</div>' if note else "",
        f'<h2>Price list</h2><table id="price-list"><tr><th>SKU</th><th>Item</th>'
        f"<th>Unit price (USD)</th></tr>{skus}</table>",
        _contact_form(supplier_id, world.web_layout),
        (
            f'<p><a id="supplier-website" href="{escape(website)}">Supplier website</a></p>'
            if website
            else ""
        ),
        '<p><a id="back" href="/portal/">All suppliers</a></p>',
    ]
    return page(f"{supplier['name']} - supplier portal", "\n".join(p for p in parts if p))


def _contact_form(supplier_id: str, layout: int) -> str:
    action = f"/portal/suppliers/{escape(supplier_id)}/contact"
    if layout == 1:
        return (
            f'<h2>Update contact</h2><form id="contact-form" method="post" action="{action}">'
            '<label for="contact-email">Contact email</label> '
            '<input id="contact-email" name="contact_email" type="email"><br>'
            '<label for="certificate">Attach certificate</label> '
            '<input id="certificate" name="certificate" type="file"><br>'
            '<button id="save-contact" type="submit">Save contact</button></form>'
        )
    # Version 2: a redesign. Same fields and endpoint; no ids, other classes and labels.
    return (
        f'<section class="card"><h2>Contact details</h2><form class="vm-form" method="post" '
        f'action="{action}"><div class="row"><span>E-mail</span> '
        '<input class="vm-input" data-field="contact" name="contact_email" type="email"></div>'
        '<div class="row"><span>Certificate</span> '
        '<input class="vm-file" name="certificate" type="file"></div>'
        '<button class="btn btn-primary" data-action="save" type="submit">Save</button>'
        "</form></section>"
    )


# -- the helpdesk UI -----------------------------------------------------------------------------


def render_ticket_list(world: World) -> str:
    """Every ticket, newest id last, with its status."""
    rows = "".join(
        f'<tr><td><a class="ticket" href="/helpdesk-ui/tickets/{escape(t["ticket_id"])}">'
        f"{escape(t['ticket_id'])}</a></td><td>{escape(t['title'])}</td>"
        f"<td>{escape(t['status'])}</td><td>{escape(t['priority'])}</td></tr>"
        for t in world.helpdesk.tickets.values()
    )
    body = (
        '<h1 id="helpdesk-title">IT helpdesk</h1>\n'
        '<table id="tickets"><tr><th>Ticket</th><th>Title</th><th>Status</th>'
        f"<th>Priority</th></tr>{rows}</table>"
    )
    return page("IT helpdesk", body)


def render_ticket_page(world: World, ticket_id: str) -> str:
    """One ticket with its comments and a comment form.

    Raises:
        WorldError: 404 for an unknown ticket.
    """
    ticket = world.helpdesk.get(ticket_id)
    comments = (
        "".join(f'<li class="comment">{escape(c["body"])}</li>' for c in ticket["comments"])
        or '<li class="empty">No comments yet.</li>'
    )
    body = (
        f'<h1 id="ticket-title">{escape(ticket["title"])}</h1>\n'
        f'<p id="ticket-meta">{escape(ticket_id)} - {escape(ticket["status"])} - '
        f"{escape(ticket['priority'])} - from {escape(ticket['requester'])}</p>\n"
        f'<p id="ticket-body">{escape(ticket["body"])}</p>\n'
        f'<h2>Comments</h2><ul id="comments">{comments}</ul>\n'
        f'<form id="comment-form" method="post" action="/helpdesk-ui/tickets/{escape(ticket_id)}'
        '/comments"><textarea id="comment-body" name="body"></textarea>'
        '<button id="post-comment" type="submit">Post comment</button></form>\n'
        '<p><a id="back" href="/helpdesk-ui/">All tickets</a></p>'
    )
    return page(f"{ticket_id} - IT helpdesk", body)


def render_refusal(status: int, detail: str) -> str:
    """The page a refused request gets."""
    return page(f"{status}", f'<h1 id="error">{status}</h1><p id="detail">{escape(detail)}</p>')


# -- the routes ----------------------------------------------------------------------------------


def web_routes(app: FastAPI, world: World) -> None:
    """Mount the supplier portal, the helpdesk UI and their admin switch on ``app``."""

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})

    def signed_in(request: Request) -> Response | None:
        """None when the request carries a valid, unexpired portal token; else the 401."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and verify_token(
            world.portal_key, token.strip(), credential=PORTAL_CREDENTIAL, now=world.now_datetime()
        ):
            return None
        return html(
            render_refusal(
                401,
                "Sign-in required: the supplier portal takes a short-lived token from the "
                f"credential vault ({PORTAL_CREDENTIAL}).",
            ),
            401,
        )

    @app.get("/portal/", response_class=HTMLResponse)
    async def portal_home(request: Request) -> Response:
        if refused := signed_in(request):
            return refused
        return html(render_portal_home(world))

    @app.get("/portal/suppliers/{supplier_id}", response_class=HTMLResponse)
    async def supplier_page(request: Request, supplier_id: str, saved: int = 0) -> Response:
        if refused := signed_in(request):
            return refused
        try:
            return html(render_supplier_page(world, supplier_id, saved=bool(saved)))
        except WorldError as exc:
            return html(render_refusal(exc.status, exc.detail), exc.status)

    def cross_site(request: Request) -> Response | None:
        """None for a POST from the site itself; else the 403 a forged post gets."""
        if same_origin_post(request.headers, request.url.scheme):
            return None
        detail = "Cross-site form posts are refused: post from this site's own pages."
        return html(render_refusal(403, detail), 403)

    @app.post("/portal/suppliers/{supplier_id}/contact")
    async def update_contact(request: Request, supplier_id: str) -> Response:
        if refused := cross_site(request) or signed_in(request):
            return refused
        form = await _form(request)
        email = form.get("contact_email", "").strip()
        if "@" not in email or supplier_id not in world.erp.suppliers:
            problem = (
                "contact_email: an e-mail address is needed"
                if "@" not in email
                else (f"no supplier {supplier_id}")
            )
            return html(render_refusal(422, problem), 422)
        with world.lock:
            world.erp.suppliers[supplier_id] = {
                **world.erp.suppliers[supplier_id],
                "contact_email": email,
            }
            world.side_effects += 1
        return RedirectResponse(f"/portal/suppliers/{supplier_id}?saved=1", status_code=303)

    @app.get("/helpdesk-ui/", response_class=HTMLResponse)
    async def ticket_list() -> Response:
        return html(render_ticket_list(world))

    @app.get("/helpdesk-ui/tickets/{ticket_id}", response_class=HTMLResponse)
    async def ticket_page(ticket_id: str) -> Response:
        try:
            return html(render_ticket_page(world, ticket_id))
        except WorldError as exc:
            return html(render_refusal(exc.status, exc.detail), exc.status)

    @app.post("/helpdesk-ui/tickets/{ticket_id}/comments")
    async def post_comment(request: Request, ticket_id: str) -> Response:
        if refused := cross_site(request):
            return refused
        form = await _form(request)
        body = form.get("body", "").strip()
        if not body:
            return html(render_refusal(422, "body: a comment needs text"), 422)
        with world.lock:
            try:
                ticket = world.helpdesk.with_comment(ticket_id, body, at=world.now())
            except WorldError as exc:
                return html(render_refusal(exc.status, exc.detail), exc.status)
            world.helpdesk.store(ticket)
            world.side_effects += 1
        return RedirectResponse(f"/helpdesk-ui/tickets/{ticket_id}", status_code=303)

    @app.get("/_world/web")
    async def web_settings() -> dict[str, Any]:
        return {"layout_version": world.web_layout}

    @app.post("/_world/web")
    async def set_web(settings: dict[str, Any]) -> dict[str, Any]:
        layout = settings.get("layout_version")
        if layout not in LAYOUTS or set(settings) - {"layout_version"}:
            raise WorldError(422, f"layout_version: one of {list(LAYOUTS)}, and nothing else")
        with world.lock:
            world.web_layout = layout
        return {"layout_version": world.web_layout}


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form's fields, first value of each (no multipart: uploads are not taken)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}
