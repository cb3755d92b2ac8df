"""The ERP: suppliers, inventory and purchase orders."""

from __future__ import annotations

from typing import Any

from agentlab.world.errors import WorldError
from agentlab.world.fixture import Erp


class ErpSystem:
    """Suppliers and stock from the fixture; purchase orders made by commits."""

    def __init__(self, fixture: Erp) -> None:
        self.suppliers = {s.supplier_id: s.model_dump() for s in fixture.suppliers}
        self.inventory = {i.sku: i.model_dump() for i in fixture.inventory}
        self.purchase_orders: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}

    def find_suppliers(self, query: str) -> list[dict[str, Any]]:
        """Suppliers whose id or name contains ``query`` (case-insensitive), with their SKUs."""
        needle = query.lower()
        return [
            {**supplier, "skus": self._skus_of(supplier["supplier_id"])}
            for supplier in self.suppliers.values()
            if needle in supplier["supplier_id"].lower() or needle in supplier["name"].lower()
        ]

    def supplier(self, supplier_id: str) -> dict[str, Any]:
        """One supplier, with its SKUs; 404 if unknown."""
        if supplier_id not in self.suppliers:
            raise WorldError(404, f"no supplier {supplier_id}")
        return {**self.suppliers[supplier_id], "skus": self._skus_of(supplier_id)}

    def stock(self, sku: str | None, *, below_reorder: bool) -> list[dict[str, Any]]:
        """Inventory lines, optionally one SKU or those below their reorder point."""
        if sku is not None and sku not in self.inventory:
            raise WorldError(404, f"no sku {sku}")
        items = [self.inventory[sku]] if sku is not None else list(self.inventory.values())
        return [i for i in items if not below_reorder or i["on_hand"] < i["reorder_point"]]

    def price_order(self, supplier_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Check an order against the vendor master and price it; 422 naming the bad field."""
        supplier = self.suppliers.get(supplier_id)
        if supplier is None:
            raise WorldError(422, f"supplier_id: no supplier {supplier_id}")
        if not supplier["is_active"]:
            raise WorldError(422, f"supplier_id: supplier {supplier_id} is inactive")
        lines = []
        for index, item in enumerate(items):
            stock = self.inventory.get(item["sku"])
            if stock is None:
                raise WorldError(422, f"items.{index}.sku: no sku {item['sku']}")
            if stock["supplier_id"] != supplier_id:
                raise WorldError(
                    422, f"items.{index}.sku: {item['sku']} is not supplied by {supplier_id}"
                )
            total = round(stock["unit_price_usd"] * item["qty"], 2)
            lines.append(
                {
                    "sku": item["sku"],
                    "qty": item["qty"],
                    "unit_price_usd": stock["unit_price_usd"],
                    "line_total_usd": total,
                }
            )
        return {
            "supplier_id": supplier_id,
            "lines": lines,
            "total_usd": round(sum(line["line_total_usd"] for line in lines), 2),
        }

    def add_purchase_order(self, priced: dict[str, Any], *, created_at: str) -> dict[str, Any]:
        """Record a priced order as an open PO with the next id."""
        po_id = f"PO-{len(self.purchase_orders) + 1:06d}"
        order = {"po_id": po_id, "status": "open", **priced, "created_at": created_at}
        self.purchase_orders[po_id] = order
        return order

    def _skus_of(self, supplier_id: str) -> list[str]:
        return [sku for sku, item in self.inventory.items() if item["supplier_id"] == supplier_id]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The ERP's collections, records sorted by id."""
        return {
            "suppliers": list(self.suppliers.values()),
            "inventory": list(self.inventory.values()),
            "purchase_orders": list(self.purchase_orders.values()),
            "invoices": list(self.invoices.values()),
        }
