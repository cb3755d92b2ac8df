"""The world as an ASGI app: every system under its own path, admin under ``/_world``.

In-process: ``httpx.AsyncClient(transport=httpx.ASGITransport(app=build_world_app()),
base_url="http://world")``. As a server: ``agentlab world serve``. The API is in
``docs/world.md``.

Handlers are ``async`` and never await while they touch the state, so on one event loop a
request's read or write is atomic; the world's lock guards callers on other threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentlab.world.api_tokens import ApiTokenGate
from agentlab.world.errors import WorldError
from agentlab.world.rpa import apply_writes, diff_of_writes, erp_writes
from agentlab.world.state import SYSTEMS, Fault, World
from agentlab.world.web import WEB_DOMAINS, is_web_host, is_web_ui_path, web_routes

Sleep = Callable[[float], Awaitable[None]]
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key")]
ClassesHeader = Annotated[str | None, Header(alias="X-Data-Classes")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderLineIn(_Body):
    """A purchase-order line as the ERP takes it."""

    sku: str
    qty: int = Field(ge=1)


class PurchaseOrderIn(_Body):
    """A purchase order as the ERP takes it."""

    supplier_id: str
    items: list[OrderLineIn] = Field(min_length=1)
    dry_run: bool


class MailIn(_Body):
    """A message as the mail system takes it."""

    to: list[str]
    subject: str
    body: str
    dry_run: bool


class TicketIn(_Body):
    """A new ticket."""

    title: str = Field(min_length=1)
    body: str
    requester: str
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    dry_run: bool


class CommentIn(_Body):
    """A comment on a ticket."""

    body: str = Field(min_length=1)
    dry_run: bool


class StatusIn(_Body):
    """A ticket's new status."""

    status: Literal["open", "pending", "resolved"]
    dry_run: bool


class RpaRunIn(_Body):
    """A request to run a workflow."""

    workflow: str
    version: str
    inputs: dict[str, Any]
    dry_run: bool


class FaultIn(_Body):
    """A fault to inject into the next matching requests."""

    method: str = "POST"
    path: str = Field(pattern=r"^/")
    status: int = Field(ge=400, le=599)
    times: int = Field(default=1, ge=1)
    retry_after_s: float | None = Field(default=None, ge=0)


LATENCY_HEADER = b"x-agentlab-simulated-latency-ms"
"""The response header carrying a system's modelled latency (the simulator sends the same)."""


class _SystemGate:
    """Before a system handles a request: count it in flight, serve a fault, wait the latency.

    A plain ASGI middleware, so the request stays counted until its response is sent.
    """

    def __init__(self, app: ASGIApp, world: World, sleep: Sleep) -> None:
        self.app = app
        self.world = world
        self.sleep = sleep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        system = scope["path"].strip("/").split("/", 1)[0] if scope["type"] == "http" else ""
        if system not in SYSTEMS:
            await self.app(scope, receive, send)
            return
        self.world.enter(system)
        try:
            fault = self.world.take_fault(scope["method"], scope["path"])
            if fault is not None:
                headers = {}
                if fault.retry_after_s is not None:
                    headers["Retry-After"] = f"{fault.retry_after_s:g}"
                refusal = JSONResponse(
                    {"detail": f"injected fault: {fault.status}"},
                    status_code=fault.status,
                    headers=headers,
                )
                await refusal(scope, receive, send)
                return
            latency_ms = self.world.latency_ms.get(system, 0)
            if not latency_ms:
                await self.app(scope, receive, send)
                return
            await self.sleep(latency_ms / 1000)
            header = (LATENCY_HEADER, str(latency_ms).encode())

            async def send_with_latency(message: Message) -> None:
                # Say the modelled service time, so a client on virtual time (the lab's
                # runs) can count it without waiting it.
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), header]}
                await send(message)

            await self.app(scope, receive, send_with_latency)
        finally:
            self.world.leave(system)


class _WebHostGuard:
    """A request for a web UI's name (``portal.example.co.jp``) reaches the web UIs only.

    The browser reaches the world under those names, so without this guard a page (or the
    model, with ``browser_open``) could read the JSON APIs and the ``/_world`` admin and
    grading endpoints on the portal's origin. Anything else under a web name is a 404.
    """

    def __init__(self, app: ASGIApp, web_domains: tuple[str, ...]) -> None:
        self.app = app
        self.web_domains = web_domains

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not is_web_ui_path(scope["path"]):
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if is_web_host(host, self.web_domains):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_world_app(
    world: World | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
    web_domains: tuple[str, ...] = WEB_DOMAINS,
) -> FastAPI:
    """The world's HTTP API over ``world`` (a fresh default world if None).

    Args:
        world: The state to serve; keep a reference to inspect it in-process.
        sleep: How simulated latency waits (``asyncio.sleep``); tests pass their own.
        web_domains: The names browsers reach the web UIs under (and their subdomains): a
            request for one of them reaches ``/portal/`` and ``/helpdesk-ui/`` only. API
            clients use another name (``127.0.0.1``, ``world``).
    """
    world = world or World()
    app = FastAPI(title="agentlab sandbox world", version="1", docs_url=None, redoc_url=None)
    app.state.world = world
    app.add_middleware(_SystemGate, world=world, sleep=sleep)
    app.add_middleware(ApiTokenGate, world=world)  # refuses before the request is counted
    app.add_middleware(_WebHostGuard, web_domains=web_domains)  # added last: runs first

    @app.exception_handler(WorldError)
    async def _refused(_request: Request, exc: WorldError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _explain(exc.errors())}, status_code=422)

    _erp_routes(app, world)
    _mail_routes(app, world)
    _helpdesk_routes(app, world)
    _kb_routes(app, world)
    _rpa_routes(app, world)
    _admin_routes(app, world)
    web_routes(app, world)
    return app


def _explain(errors: Sequence[Any]) -> str:
    """Validation errors as one line each: ``items.0.qty: Input should be ...``."""
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        problems.append(f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(problems)


def _answer(status_and_body: tuple[int, dict[str, Any]]) -> JSONResponse:
    status, body = status_and_body
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _erp_routes(app: FastAPI, world: World) -> None:
    @app.get("/erp/suppliers")
    async def find_suppliers(query: str = "") -> dict[str, Any]:
        return {"suppliers": world.erp.find_suppliers(query)}

    @app.get("/erp/suppliers/{supplier_id}")
    async def get_supplier(supplier_id: str) -> dict[str, Any]:
        return world.erp.supplier(supplier_id)

    @app.get("/erp/inventory")
    async def inventory(sku: str | None = None, below_reorder: bool = False) -> dict[str, Any]:
        return {"items": world.erp.stock(sku, below_reorder=below_reorder)}

    @app.get("/erp/purchase-orders")
    async def purchase_orders() -> dict[str, Any]:
        return {"purchase_orders": list(world.erp.purchase_orders.values())}

    @app.post("/erp/purchase-orders")
    async def create_purchase_order(body: PurchaseOrderIn, key: KeyHeader = None) -> JSONResponse:
        items = [line.model_dump() for line in body.items]

        def preview() -> dict[str, Any]:
            priced = world.erp.price_order(body.supplier_id, items)
            draft = {"po_id": None, "status": "open", **priced}
            return {**draft, "diff": {"erp.purchase_orders": {"added": [draft]}}}

        def apply() -> dict[str, Any]:
            priced = world.erp.price_order(body.supplier_id, items)
            order = world.erp.add_purchase_order(priced, created_at=world.now())
            return {**order, "diff": {"erp.purchase_orders": {"added": [order]}}}

        return _answer(
            world.write(
                key=key,
                path="/erp/purchase-orders",
                body=body.model_dump(exclude={"dry_run"}),
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )


def _mail_routes(app: FastAPI, world: World) -> None:
    @app.get("/mail/outbox")
    async def outbox() -> dict[str, Any]:
        return {"messages": list(world.mail.outbox.values())}

    @app.post("/mail/send")
    async def send(body: MailIn, key: KeyHeader = None) -> JSONResponse:
        message = body.model_dump(exclude={"dry_run"})

        def preview() -> dict[str, Any]:
            world.mail.check_recipients(body.to)
            draft = {"message_id": None, **message}
            return {**draft, "accepted": body.to, "diff": {"mail.outbox": {"added": [draft]}}}

        def apply() -> dict[str, Any]:
            world.mail.check_recipients(body.to)
            sent = world.mail.send(message, sent_at=world.now())
            return {**sent, "accepted": body.to, "diff": {"mail.outbox": {"added": [sent]}}}

        return _answer(
            world.write(
                key=key,
                path="/mail/send",
                body=message,
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )


def _helpdesk_routes(app: FastAPI, world: World) -> None:
    @app.get("/helpdesk/tickets")
    async def tickets(
        status: Literal["open", "pending", "resolved"] | None = None,
    ) -> dict[str, Any]:
        return {"tickets": world.helpdesk.list(status)}

    @app.get("/helpdesk/tickets/{ticket_id}")
    async def ticket(ticket_id: str) -> dict[str, Any]:
        return world.helpdesk.get(ticket_id)

    @app.post("/helpdesk/tickets")
    async def create(body: TicketIn, key: KeyHeader = None) -> JSONResponse:
        fields = body.model_dump(exclude={"dry_run"})

        def preview() -> dict[str, Any]:
            draft = world.helpdesk.draft(fields)
            return {**draft, "diff": {"helpdesk.tickets": {"added": [draft]}}}

        def apply() -> dict[str, Any]:
            opened = world.helpdesk.open(fields)
            return {**opened, "diff": {"helpdesk.tickets": {"added": [opened]}}}

        return _answer(
            world.write(
                key=key,
                path="/helpdesk/tickets",
                body=fields,
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )

    def _update(
        path: str,
        ticket_id: str,
        key: str | None,
        body: CommentIn | StatusIn,
        change: Callable[[], dict[str, Any]],
    ) -> JSONResponse:
        def preview() -> dict[str, Any]:
            before, after = world.helpdesk.get(ticket_id), change()
            changed = {"id": ticket_id, "before": before, "after": after}
            return {**after, "diff": {"helpdesk.tickets": {"changed": [changed]}}}

        def apply() -> dict[str, Any]:
            answer = preview()
            world.helpdesk.store({k: v for k, v in answer.items() if k != "diff"})
            return answer

        return _answer(
            world.write(
                key=key,
                path=path,
                body=body.model_dump(exclude={"dry_run"}),
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )

    @app.post("/helpdesk/tickets/{ticket_id}/comments")
    async def comment(ticket_id: str, body: CommentIn, key: KeyHeader = None) -> JSONResponse:
        return _update(
            f"/helpdesk/tickets/{ticket_id}/comments",
            ticket_id,
            key,
            body,
            lambda: world.helpdesk.with_comment(ticket_id, body.body, at=world.now()),
        )

    @app.post("/helpdesk/tickets/{ticket_id}/status")
    async def set_status(ticket_id: str, body: StatusIn, key: KeyHeader = None) -> JSONResponse:
        return _update(
            f"/helpdesk/tickets/{ticket_id}/status",
            ticket_id,
            key,
            body,
            lambda: world.helpdesk.with_status(ticket_id, body.status),
        )


def _classes(header: str | None) -> set[str]:
    """The caller's data classes from ``X-Data-Classes``; ``public`` when absent or empty."""
    classes = {part.strip() for part in (header or "").split(",") if part.strip()}
    return classes or {"public"}


def _kb_routes(app: FastAPI, world: World) -> None:
    @app.get("/kb/search")
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=20)] = 5,
        classes: ClassesHeader = None,
    ) -> dict[str, Any]:
        return {"articles": world.kb.search(q, classes=_classes(classes), limit=limit)}

    @app.get("/kb/articles/{doc_id}")
    async def article(doc_id: str, classes: ClassesHeader = None) -> dict[str, Any]:
        return world.kb.get(doc_id, classes=_classes(classes))


def _rpa_routes(app: FastAPI, world: World) -> None:
    @app.get("/rpa/workflows")
    async def workflows() -> dict[str, Any]:
        return {"workflows": world.rpa.catalogue()}

    @app.post("/rpa/runs")
    async def run(body: RpaRunIn, key: KeyHeader = None) -> JSONResponse:
        def preview() -> dict[str, Any]:
            outcome = world.rpa.plan(body.workflow, body.version, body.inputs, erp=world.erp)
            draft = {"rpa_run_id": None, **outcome}
            writes = erp_writes(outcome, world.erp, at=world.now())
            changes = {"rpa.runs": {"added": [draft]}, **diff_of_writes(writes, world.erp)}
            return {**draft, "diff": changes}

        def apply() -> dict[str, Any]:
            outcome = world.rpa.plan(body.workflow, body.version, body.inputs, erp=world.erp)
            recorded = world.rpa.record(outcome, at=world.now())
            writes = erp_writes(outcome, world.erp, at=recorded["finished_at"])
            changes = {"rpa.runs": {"added": [recorded]}, **diff_of_writes(writes, world.erp)}
            apply_writes(writes, world.erp)
            return {**recorded, "diff": changes}

        return _answer(
            world.write(
                key=key,
                path="/rpa/runs",
                body=body.model_dump(exclude={"dry_run"}),
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )


def _admin_routes(app: FastAPI, world: World) -> None:
    @app.get("/_world/snapshot")
    async def snapshot() -> dict[str, Any]:
        return world.snapshot()

    @app.get("/_world/diff")
    async def diff() -> dict[str, Any]:
        return world.diff()

    @app.post("/_world/reset")
    async def reset() -> dict[str, str]:
        world.reset()
        return {"status": "reset"}

    @app.get("/_world/stats")
    async def stats() -> dict[str, Any]:
        return world.stats()

    @app.post("/_world/faults")
    async def add_fault(fault: FaultIn) -> dict[str, int]:
        return {"armed": world.add_fault(Fault(**fault.model_dump()))}

    @app.delete("/_world/faults")
    async def clear_faults() -> dict[str, str]:
        world.clear_faults()
        return {"status": "cleared"}

    @app.post("/_world/latency")
    async def set_latency(latency: dict[str, int]) -> dict[str, int]:
        return world.set_latency(latency)
