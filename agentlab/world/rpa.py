"""The RPA runner: versioned, deterministic workflows (the article's 9.2).

Each run returns a status, an error code and a screenshot-like text of its last screen. An
outcome is a pure function of (seed, workflow, version, inputs) and the fixture: the same call
always succeeds or always fails with the same code, so suites can count on it. A flow that
names a supplier the vendor master does not hold fails with ``E_VENDOR_NOT_FOUND``.

A succeeded run of a flow the ERP knows changes the ERP the way the robot's clicks would:
``invoice_entry`` adds (or re-keys) an invoice, ``vendor_master_update`` reactivates the
supplier. Flows of other names change nothing but their own run record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from agentlab.world.erp import ErpSystem
from agentlab.world.errors import WorldError
from agentlab.world.fixture import Rpa, Workflow

PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}
SCREEN_WIDTH = 48
VENDOR_NOT_FOUND = "E_VENDOR_NOT_FOUND"
ERP_FLOWS = frozenset({"invoice_entry", "vendor_master_update"})
"""Flows whose success changes ERP records (see :func:`erp_writes`)."""


@dataclass(frozen=True)
class ErpWrite:
    """One ERP record a succeeded run puts in place."""

    collection: str
    """``suppliers`` or ``invoices``."""
    record_id: str
    record: dict[str, Any]


class RpaRunner:
    """Runs the fixture's workflows; a run's record is kept when it is committed."""

    def __init__(self, fixture: Rpa, *, seed: int) -> None:
        self.workflows = {(w.name, w.version): w for w in fixture.workflows}
        self.runs: dict[str, dict[str, Any]] = {}
        self._seed = seed

    def catalogue(self) -> list[dict[str, Any]]:
        """Every workflow and version, with its inputs."""
        return [
            {"name": w.name, "version": w.version, "description": w.description, "inputs": w.inputs}
            for w in self.workflows.values()
        ]

    def plan(
        self, name: str, version: str, inputs: dict[str, Any], *, erp: ErpSystem
    ) -> dict[str, Any]:
        """Check the call and compute its outcome, without recording it.

        Raises:
            WorldError: 404 for an unknown workflow or version; 422 for missing, unexpected or
                mistyped inputs.
        """
        workflow = self.workflows.get((name, version))
        if workflow is None:
            known = sorted(v for n, v in self.workflows if n == name)
            raise WorldError(
                404, f"no workflow {name} {version}" + (f" (versions: {known})" if known else "")
            )
        _check_inputs(workflow, inputs)
        digest = hashlib.sha256(
            json.dumps([self._seed, name, version, inputs], sort_keys=True).encode()
        ).digest()
        error_code: str | None = None
        supplier_id = inputs.get("supplier_id")
        if name in ERP_FLOWS and isinstance(supplier_id, str) and supplier_id not in erp.suppliers:
            error_code = VENDOR_NOT_FOUND
        elif int.from_bytes(digest[:8], "big") / 2**64 < workflow.failure_rate:
            error_code = workflow.error_codes[digest[8] % len(workflow.error_codes)]
        screens = workflow.screens or ("Start", "Done")
        last = screens[len(screens) // 2] if error_code else screens[-1]
        return {
            "workflow": name,
            "version": version,
            "inputs": inputs,
            "status": "failed" if error_code else "succeeded",
            "error_code": error_code,
            "screenshot": {
                "media_type": "text/plain",
                "content": _screen(workflow, last, inputs, error_code),
            },
        }

    def record(self, outcome: dict[str, Any], *, at: str) -> dict[str, Any]:
        """Keep a committed run with the next id."""
        run = {"rpa_run_id": f"RPA-{len(self.runs) + 1:06d}", **outcome, "finished_at": at}
        self.runs[run["rpa_run_id"]] = run
        return run

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The committed runs."""
        return {"runs": list(self.runs.values())}


def erp_writes(outcome: dict[str, Any], erp: ErpSystem, *, at: str) -> list[ErpWrite]:
    """The ERP records a run's outcome puts in place (none for a failed run)."""
    if outcome["status"] != "succeeded":
        return []
    name, inputs = outcome["workflow"], outcome["inputs"]
    if name == "vendor_master_update" and inputs.get("supplier_id") in erp.suppliers:
        supplier_id = inputs["supplier_id"]
        return [
            ErpWrite("suppliers", supplier_id, {**erp.suppliers[supplier_id], "is_active": True})
        ]
    if name == "invoice_entry" and isinstance(inputs.get("invoice_no"), str):
        invoice = {
            "invoice_no": inputs["invoice_no"],
            **{k: v for k, v in inputs.items() if k != "invoice_no"},
            "entered_by": f"rpa:{name} {outcome['version']}",
            "entered_at": at,
        }
        return [ErpWrite("invoices", inputs["invoice_no"], invoice)]
    return []


def diff_of_writes(writes: list[ErpWrite], erp: ErpSystem) -> dict[str, dict[str, list[Any]]]:
    """The writes as diff entries, ``erp.<collection>``: added, or changed with before/after."""
    changes: dict[str, dict[str, list[Any]]] = {}
    for write in writes:
        records = getattr(erp, write.collection)
        entry = changes.setdefault(f"erp.{write.collection}", {})
        before = records.get(write.record_id)
        if before is None:
            entry.setdefault("added", []).append(write.record)
        elif before != write.record:
            entry.setdefault("changed", []).append(
                {"id": write.record_id, "before": before, "after": write.record}
            )
    return {name: entry for name, entry in changes.items() if entry}


def apply_writes(writes: list[ErpWrite], erp: ErpSystem) -> None:
    """Put the records in place."""
    for write in writes:
        getattr(erp, write.collection)[write.record_id] = write.record


def _check_inputs(workflow: Workflow, inputs: dict[str, Any]) -> None:
    missing = sorted(set(workflow.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(workflow.inputs))
    if missing or extra:
        raise WorldError(
            422,
            f"inputs of {workflow.name} {workflow.version}: missing {missing}, unexpected {extra}",
        )
    for name, kind in workflow.inputs.items():
        value = inputs[name]
        is_wrong_bool = isinstance(value, bool) and kind != "bool"
        if is_wrong_bool or not isinstance(value, PYTHON_TYPES[kind]):
            raise WorldError(422, f"inputs.{name}: expected {kind}, got {type(value).__name__}")


def _screen(workflow: Workflow, screen: str, inputs: dict[str, Any], error: str | None) -> str:
    """The last screen as a fixed-width ASCII box; other characters are escaped."""
    lines = [f"{workflow.name} {workflow.version}", f"[ {screen} ]", ""]
    lines += [f"{key}: {value}" for key, value in sorted(inputs.items())]
    lines += ["", f"!! {error}" if error else "OK"]
    inner = SCREEN_WIDTH - 4
    border = "+" + "-" * (SCREEN_WIDTH - 2) + "+"
    body = [
        f"| {line.encode('ascii', 'backslashreplace').decode('ascii')[:inner]:<{inner}} |"
        for line in lines
    ]
    return "\n".join([border, *body, border])
