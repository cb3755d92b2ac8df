"""A worker that records a governed write and then waits to be killed, never finishing its run.

    python -m tests.integration._crash_worker STORE_URL committed|approved

It starts a run with ids seeded by :data:`SEED` (so the test can tell its run id in advance),
proposes :data:`TOOL` with :data:`ARGUMENTS` as a write, dry-runs and approves it, and with
``committed`` also commits it with :data:`FIRST_RESULT`. It then prints
``COMMITTED <run_id> <step_id> <idempotency_key>`` (or ``APPROVED ...``), flushes, and sleeps
with the store still open until it is killed.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Final

from pydantic import JsonValue

from agentlab.adapters import open_store
from agentlab.core.clock import TickingClock
from agentlab.core.ids import IdFactory
from agentlab.store import RunRecorder

SEED: Final = 20260101
TOOL: Final = "create_purchase_order"
ARGUMENTS: Final[dict[str, JsonValue]] = {
    "supplier_id": "SUP-000123",
    "items": [{"sku": "TONER-K", "qty": 40}],
}
FIRST_RESULT: Final[dict[str, JsonValue]] = {"po_id": "PO-000001"}
STOP_POINTS: Final = ("committed", "approved")


def main(url: str, stop_point: str) -> None:
    """Record up to ``stop_point``, say so on stdout, and wait to be killed."""
    if stop_point not in STOP_POINTS:
        raise SystemExit(f"stop point must be one of {STOP_POINTS}, got {stop_point!r}")
    store = open_store(url)
    rec = RunRecorder.start(
        store,
        task="order 40 black toner cartridges",
        actor="alice",
        scopes=("erp:write",),
        clock=TickingClock(datetime(2026, 1, 1, tzinfo=UTC)),
        ids=IdFactory.seeded(SEED),
    )
    order = rec.propose(TOOL, ARGUMENTS, side_effect="write")
    rec.dry_run(order.step_id, {"purchase_orders": {"added": 1}})
    rec.approve(order.step_id, approver="bob", approved_by="human")
    if stop_point == "committed":
        rec.commit(order, FIRST_RESULT, latency_ms=240.0)
    print(stop_point.upper(), rec.run_id, order.step_id, order.idempotency_key, flush=True)
    while True:  # wait for SIGKILL; the store is deliberately left open and the run unfinished
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
