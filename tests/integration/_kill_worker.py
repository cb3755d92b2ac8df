"""A worker that records part of a run and then waits to be killed, as a crashing process would.

    python -m tests.integration._crash_worker STORE_URL after_commit|after_approval

It prints ``READY <run_id> <step_id> <idempotency_key>`` once the chosen point is written, then
sleeps until it is killed. It never finishes the run.
"""

from __future__ import annotations

import sys
import time

from agentlab.adapters import open_store
from agentlab.store import RunRecorder

ORDER = {"supplier_id": "SUP-000123", "items": [{"sku": "TONER-K", "qty": 40}]}
FIRST_RESULT = {"po_id": "PO-000001"}


def main(url: str, stop_point: str) -> None:
    store = open_store(url)
    rec = RunRecorder.start(store, task="order toner", actor="alice")
    order = rec.propose("create_purchase_order", ORDER, side_effect="write")
    rec.dry_run(order.step_id, {"purchase_orders": {"added": 1}})
    rec.approve(order.step_id, approver="bob", approved_by="human")
    if stop_point == "after_commit":
        rec.commit(order, FIRST_RESULT, latency_ms=240)
    print("READY", rec.run_id, order.step_id, order.idempotency_key, flush=True)
    while True:  # wait for SIGKILL; the store is deliberately left open
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
