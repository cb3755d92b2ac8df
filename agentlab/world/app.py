"""The world as an ASGI app: every system under its own path, admin under ``/_world``.

In-process: ``httpx.AsyncClient(transport=httpx.ASGITransport(app=build_world_app()),
base_url="http://world")``. As a server: ``agentlab world serve``. The API is in
``docs/world.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from agentlab.world.errors import WorldError
from agentlab.world.state import SYSTEMS, Fault, World

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
    path: str
    status: int = Field(ge=400, le=599)
    times: int = Field(default=1, ge=1)
    retry_after_s: float | None = Field(default=None, ge=0)


def build_world_app(world: World | None = None, *, sleep: Sleep = asyncio.sleep) -> FastAPI:
    """The world's HTTP API over ``world`` (a fresh default world if None).

    Args:
        world: The state to serve; keep a reference to inspect it in-process.
        sleep: How simulated latency waits (``asyncio.sleep``).
    """
    world = world or World()
    app = FastAPI(title="agentlab sandbox world", version="1", docs_url=None, redoc_url=None)
    app.state.world = world

    @app.exception_handler(WorldError)
    async def _refused(_request: Request, exc: WorldError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.middleware("http")
    async def _systems(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        system = request.url.path.strip("/").split("/", 1)[0]
        if system not in SYSTEMS:
            return await call_next(request)
        fault = world.take_fault(request.method, request.url.path)
        world.enter(system)
        try:
            if fault is not None:
                headers = {}
                if fault.retry_after_s is not None:
                    headers["Retry-After"] = f"{fault.retry_after_s:g}"
                return JSONResponse(
                    {"detail": f"injected fault: {fault.status}"},
                    status_code=fault.status,
                    headers=headers,
                )
            latency = world.latency_ms.get(system, 0)
            if latency:
                await sleep(latency / 1000)
            return await call_next(request)
        finally:
            world.leave(system)

    _erp_routes(app, world)
    _mail_routes(app, world)
    _helpdesk_routes(app, world)
    _kb_routes(app, world)
    _rpa_routes(app, world)
    _admin_routes(app, world)
    return app


def _answer(status_and_body: tuple[int, dict[str, Any]]) -> JSONResponse:
    status, body = status_and_body
    return JSONResponse(body, status_code=status)


def _erp_routes(app: FastAPI, world: World) -> None:
    @app.get("/erp/suppliers")
    def find_suppliers(query: str = "") -> dict[str, Any]:
        return {"suppliers": world.erp.find_suppliers(query)}

    @app.get("/erp/suppliers/{supplier_id}")
    def get_supplier(supplier_id: str) -> dict[str, Any]:
        return world.erp.supplier(supplier_id)

    @app.get("/erp/inventory")
    def inventory(sku: str | None = None, below_reorder: bool = False) -> dict[str, Any]:
        return {"items": world.erp.stock(sku, below_reorder=below_reorder)}

    @app.get("/erp/purchase-orders")
    def purchase_orders() -> dict[str, Any]:
        return {"purchase_orders": list(world.erp.purchase_orders.values())}

    @app.post("/erp/purchase-orders")
    def create_purchase_order(body: PurchaseOrderIn, key: KeyHeader = None) -> JSONResponse:
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
                request={
                    "path": "/erp/purchase-orders",
                    "body": body.model_dump(exclude={"dry_run"}),
                },
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )


def _mail_routes(app: FastAPI, world: World) -> None:
    @app.get("/mail/outbox")
    def outbox() -> dict[str, Any]:
        return {"messages": list(world.mail.outbox.values())}

    @app.post("/mail/send")
    def send(body: MailIn, key: KeyHeader = None) -> JSONResponse:
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
                request={"path": "/mail/send", "body": message},
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )


def _helpdesk_routes(app: FastAPI, world: World) -> None:
    @app.get("/helpdesk/tickets")
    def tickets(status: Literal["open", "pending", "resolved"] | None = None) -> dict[str, Any]:
        return {"tickets": world.helpdesk.list(status)}

    @app.get("/helpdesk/tickets/{ticket_id}")
    def ticket(ticket_id: str) -> dict[str, Any]:
        return world.helpdesk.get(ticket_id)

    @app.post("/helpdesk/tickets")
    def create(body: TicketIn, key: KeyHeader = None) -> JSONResponse:
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
                request={"path": "/helpdesk/tickets", "body": fields},
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )

    def _update(
        ticket_id: str, key: str | None, body: BaseModel, change: Callable[[], dict[str, Any]]
    ) -> JSONResponse:
        def preview() -> dict[str, Any]:
            before, after = world.helpdesk.get(ticket_id), change()
            return {
                **after,
                "diff": {
                    "helpdesk.tickets": {
                        "changed": [{"id": ticket_id, "before": before, "after": after}]
                    }
                },
            }

        def apply() -> dict[str, Any]:
            answer = preview()
            world.helpdesk.store({k: v for k, v in answer.items() if k != "diff"})
            return answer

        return _answer(
            world.write(
                key=key,
                request={"ticket": ticket_id, "body": body.model_dump(exclude={"dry_run"})},
                dry_run=body.dry_run,  # type: ignore[attr-defined]
                preview=preview,
                apply=apply,
            )
        )

    @app.post("/helpdesk/tickets/{ticket_id}/comments")
    def comment(ticket_id: str, body: CommentIn, key: KeyHeader = None) -> JSONResponse:
        return _update(
            ticket_id,
            key,
            body,
            lambda: world.helpdesk.with_comment(ticket_id, body.body, at=world.now()),
        )

    @app.post("/helpdesk/tickets/{ticket_id}/status")
    def set_status(ticket_id: str, body: StatusIn, key: KeyHeader = None) -> JSONResponse:
        return _update(
            ticket_id, key, body, lambda: world.helpdesk.with_status(ticket_id, body.status)
        )


def _classes(header: str | None) -> set[str]:
    if not header:
        return {"public"}
    return {part.strip() for part in header.split(",") if part.strip()}


def _kb_routes(app: FastAPI, world: World) -> None:
    @app.get("/kb/search")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=20)] = 5,
        classes: ClassesHeader = None,
    ) -> dict[str, Any]:
        return {"articles": world.kb.search(q, classes=_classes(classes), limit=limit)}

    @app.get("/kb/articles/{doc_id}")
    def article(doc_id: str, classes: ClassesHeader = None) -> dict[str, Any]:
        return world.kb.get(doc_id, classes=_classes(classes))


def _rpa_routes(app: FastAPI, world: World) -> None:
    @app.get("/rpa/workflows")
    def workflows() -> dict[str, Any]:
        return {"workflows": world.rpa.catalogue()}

    @app.post("/rpa/runs")
    def run(body: RpaRunIn, key: KeyHeader = None) -> JSONResponse:
        def preview() -> dict[str, Any]:
            outcome = world.rpa.plan(body.workflow, body.version, body.inputs)
            draft = {"rpa_run_id": None, **outcome}
            return {**draft, "diff": {"rpa.runs": {"added": [draft]}}}

        def apply() -> dict[str, Any]:
            outcome = world.rpa.plan(body.workflow, body.version, body.inputs)
            recorded = world.rpa.record(outcome, at=world.now())
            changes: dict[str, Any] = {"rpa.runs": {"added": [recorded]}}
            if recorded["status"] == "succeeded":
                changes |= _rpa_effects(world, body)
            return {**recorded, "diff": changes}

        return _answer(
            world.write(
                key=key,
                request={"path": "/rpa/runs", "body": body.model_dump(exclude={"dry_run"})},
                dry_run=body.dry_run,
                preview=preview,
                apply=apply,
            )
        )


def _rpa_effects(world: World, body: RpaRunIn) -> dict[str, Any]:
    """What a succeeded flow changes in the ERP, as a diff entry."""
    if body.workflow == "vendor_master_update":
        supplier_id = body.inputs["supplier_id"]
        before = world.erp.suppliers.get(supplier_id)
        if before is None:
            return {}
        after = {**before, "is_active": True}
        world.erp.suppliers[supplier_id] = after
        return {
            "erp.suppliers": {"changed": [{"id": supplier_id, "before": before, "after": after}]}
        }
    if body.workflow == "invoice_entry":
        invoice = {**body.inputs, "entered_at": world.now()}
        world.erp.invoices[body.inputs["invoice_no"]] = invoice
        return {"erp.invoices": {"added": [invoice]}}
    return {}


def _admin_routes(app: FastAPI, world: World) -> None:
    @app.get("/_world/snapshot")
    def snapshot() -> dict[str, Any]:
        return world.snapshot()

    @app.get("/_world/diff")
    def diff() -> dict[str, Any]:
        return world.diff()

    @app.post("/_world/reset")
    def reset() -> dict[str, str]:
        world.reset()
        return {"status": "reset"}

    @app.get("/_world/stats")
    def stats() -> dict[str, Any]:
        return world.stats()

    @app.post("/_world/faults")
    def add_fault(fault: FaultIn) -> dict[str, Any]:
        with world.lock:
            world.faults.append(Fault(**fault.model_dump()))
            return {"armed": len(world.faults)}

    @app.delete("/_world/faults")
    def clear_faults() -> dict[str, str]:
        with world.lock:
            world.faults.clear()
        return {"status": "cleared"}

    @app.post("/_world/latency")
    def set_latency(latency: dict[str, Annotated[int, Field(ge=0)]]) -> dict[str, int]:
        unknown = set(latency) - set(SYSTEMS)
        if unknown:
            raise WorldError(422, f"unknown systems {sorted(unknown)}; known: {list(SYSTEMS)}")
        with world.lock:
            world.latency_ms.update(latency)
            return dict(world.latency_ms)
