"""Governed calls per second through the executor, and how close caps let it get to the bound.

Two measurements against the in-process sandbox world (httpx ASGI transport, no sockets):

* overhead: purchase orders one after another with no simulated latency -- each is a
  proposal, a dry-run, a policy approval and a commit, with their events (memory store)
  and audit records; what the pipeline itself costs per call;
* caps: N concurrent orders with the ERP answering in ``--latency-ms`` and the policy's
  ``erp_api`` concurrency of 5. Each order makes two ERP requests (dry-run, commit), so the
  bound is 5 / (2 x latency) orders per second; the table gives the share of it reached.

    .venv/bin/python benchmarks/executor_throughput.py
    .venv/bin/python benchmarks/executor_throughput.py --orders 200 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from rich.console import Console
from rich.table import Table

from agentlab.core.ids import IdFactory
from agentlab.policy import default_policy
from agentlab.runtime import CallRequest, Executor
from agentlab.store import MemoryEventStore, RunRecorder
from agentlab.tools import builtin_tools
from agentlab.world import World, build_world_app

REQUEST = CallRequest(actor="alice", use_case="procurement")
ORDER = {
    "supplier_id": "SUP-000103",
    "items": [{"sku": "TONER-BK-05", "qty": 2}],
    "dry_run": False,
    "idempotency_key": "benchmark-key-0001",
}


async def orders(count: int, *, latency_ms: int, concurrent: bool) -> tuple[float, int]:
    """Place ``count`` orders; returns (seconds, how many committed)."""
    world = World()
    world.latency_ms["erp"] = latency_ms
    transport = httpx.ASGITransport(app=build_world_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://world") as http:
        executor = Executor(tools=builtin_tools(), policy=default_policy(), http=http)
        store, ids = MemoryEventStore(), IdFactory.seeded(7)
        recorders = [
            RunRecorder.start(store, task=f"order {n}", actor="alice", ids=ids)
            for n in range(count)
        ]

        async def one(recorder: RunRecorder) -> bool:
            outcome = await executor.call(recorder, REQUEST, "create_purchase_order", ORDER)
            return outcome.status == "ok"

        started = time.perf_counter()
        if concurrent:
            done = await asyncio.gather(*(one(r) for r in recorders))
        else:
            done = [await one(r) for r in recorders]
        return time.perf_counter() - started, sum(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=20)
    options = parser.parse_args()

    table = Table(title="executor throughput (in-process world, memory store)")
    for column in ("measurement", "orders", "seconds", "orders/s", "ms/order", "bound", "of bound"):
        table.add_column(column, justify="right")
    seconds, done = asyncio.run(orders(options.orders, latency_ms=0, concurrent=False))
    table.add_row(
        "overhead, sequential, 0 ms",
        str(done),
        f"{seconds:.2f}",
        f"{done / seconds:.0f}",
        f"{1000 * seconds / done:.2f}",
        "-",
        "-",
    )
    seconds, done = asyncio.run(
        orders(options.orders, latency_ms=options.latency_ms, concurrent=True)
    )
    bound = 5 / (2 * options.latency_ms / 1000)
    rate = done / seconds
    table.add_row(
        f"caps, {options.orders} concurrent, {options.latency_ms} ms",
        str(done),
        f"{seconds:.2f}",
        f"{rate:.0f}",
        f"{1000 * seconds / done:.2f}",
        f"{bound:.0f}/s",
        f"{rate / bound:.0%}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
