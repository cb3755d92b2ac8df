"""ERP tools: look up suppliers and stock, and create purchase orders (the article's 4.1)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentlab.tools.context import ToolContext, ToolOutput
from agentlab.tools.registry import tool
from agentlab.tools.spec import ToolArguments, WriteArguments

SupplierId = Annotated[str, Field(pattern=r"^SUP-[0-9]{6}$")]
Sku = Annotated[str, Field(pattern=r"^[A-Z0-9-]{3,32}$")]


class FindSupplier(ToolArguments):
    """Find ERP suppliers whose name or id contains the query (case-insensitive)."""

    query: str = Field(max_length=64)
    """Part of the supplier's name or id; an empty string lists every supplier."""


@tool(FindSupplier, side_effect="read", scope="erp:read", system="erp_api")
async def find_supplier(args: FindSupplier, ctx: ToolContext) -> ToolOutput:
    """Search the ERP's suppliers."""
    return ToolOutput(await ctx.request("GET", "/erp/suppliers", params={"query": args.query}))


class CheckInventory(ToolArguments):
    """Read stock levels, prices and suppliers of SKUs in the ERP."""

    sku: Sku | None
    """One SKU to look up, or null for all."""
    below_reorder: bool
    """True to list only SKUs whose stock is below their reorder point."""


@tool(CheckInventory, side_effect="read", scope="erp:read", system="erp_api")
async def check_inventory(args: CheckInventory, ctx: ToolContext) -> ToolOutput:
    """Read inventory from the ERP."""
    params = {"below_reorder": str(args.below_reorder).lower()}
    if args.sku is not None:
        params["sku"] = args.sku
    return ToolOutput(await ctx.request("GET", "/erp/inventory", params=params))


class OrderLine(ToolArguments):
    """One line of a purchase order."""

    sku: Sku
    """The stock-keeping unit: 3-32 capital letters, digits or dashes."""
    qty: int = Field(ge=1, le=1000)
    """How many units, 1 to 1000."""


class CreatePurchaseOrder(WriteArguments):
    """Create PO in ERP (dry-run supported)"""  # noqa: D415 - the article's words, verbatim

    supplier_id: SupplierId
    """The supplier: SUP- then six digits; look it up with find_supplier."""
    items: list[OrderLine] = Field(min_length=1, max_length=20)
    """1 to 20 order lines."""


def _po_targets(args: CreatePurchaseOrder) -> tuple[str, ...]:
    return (f"erp:supplier/{args.supplier_id}", *(f"erp:sku/{line.sku}" for line in args.items))


@tool(
    CreatePurchaseOrder,
    side_effect="write",
    scope="erp:write",
    system="erp_api",
    targets=_po_targets,
)
async def create_purchase_order(args: CreatePurchaseOrder, ctx: ToolContext) -> ToolOutput:
    """Create (or preview) a purchase order."""
    body = await ctx.request(
        "POST",
        "/erp/purchase-orders",
        json={
            "supplier_id": args.supplier_id,
            "items": [line.model_dump() for line in args.items],
            "dry_run": ctx.is_dry_run,
        },
    )
    return ToolOutput.of_write(body)
