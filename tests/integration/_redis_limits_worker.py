"""A worker process sharing caps or a budget through Redis with other workers.

    python -m tests.integration._redis_limits_worker MODE REDIS_URL NAMESPACE [N] [TOTAL]

Modes:

``slots N TOTAL``
    N concurrent calls hold an ``erp_api`` slot (concurrency :data:`SLOT_CAP`). Each counts
    itself in ``<ns>:test:arrived`` before asking for a slot; inside it, it pushes the number
    of calls inside (its own Redis counter, not the caps') to ``<ns>:test:seen`` and holds
    the slot until all TOTAL calls of all workers have arrived, so the cap is reached for
    certain, without timing.
``hold TTL``
    Takes the one slot of ``erp_api`` (concurrency 1) with a lease of TTL seconds, prints
    ``HELD`` and waits to be killed.
``commits N``
    After every worker is ready (``<ns>:test:ready`` reaches TOTAL), tries N commits of
    ``email_send`` (daily cap :data:`DAILY_CAP`) and prints how many it got.
``budget N``
    After every worker is ready, asks a budget of :data:`RPM` requests per minute for N
    requests at once, on a frozen clock, and prints how many were granted. A request that
    would wait gives up instead (its sleep raises), so nothing refills and none is granted
    late.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

import redis

from agentlab.adapters.redis_limits import RedisLLMBudget, RedisToolCaps
from agentlab.core.clock import TickingClock
from agentlab.policy import RateLimits, ToolLimits

SLOT_CAP = 3
DAILY_CAP = 25
RPM = 5
FROZEN_S = 5000.0
DAY = datetime(2026, 3, 1, 9, tzinfo=UTC)


class WouldWait(Exception):
    """Raised by the budget's sleep: the request would have waited."""


def _barrier(client: redis.Redis, namespace: str, total: int) -> None:
    client.incr(f"{namespace}:test:ready")
    deadline = time.monotonic() + 60
    while int(client.get(f"{namespace}:test:ready") or 0) < total:
        if time.monotonic() > deadline:
            raise SystemExit("the other workers never got ready")
        time.sleep(0.005)


async def _slots(client: redis.Redis, namespace: str, n: int, total: int) -> None:
    caps = RedisToolCaps(
        client, RateLimits(tools={"erp_api": ToolLimits(concurrency=SLOT_CAP)}), namespace=namespace
    )

    async def call() -> None:
        client.incr(f"{namespace}:test:arrived")
        async with caps.slot("erp_api"):
            inside = client.incr(f"{namespace}:test:inside")
            client.rpush(f"{namespace}:test:seen", inside)
            while int(client.get(f"{namespace}:test:arrived") or 0) < total:
                await asyncio.sleep(0.002)
            client.decr(f"{namespace}:test:inside")

    await asyncio.gather(*(call() for _ in range(n)))
    print("DONE", flush=True)


async def _hold(client: redis.Redis, namespace: str, ttl_s: float) -> None:
    caps = RedisToolCaps(
        client,
        RateLimits(tools={"erp_api": ToolLimits(concurrency=1)}),
        namespace=namespace,
        lease_ttl_s=ttl_s,
    )
    async with caps.slot("erp_api"):
        print("HELD", flush=True)
        while True:  # renewing the lease in the background until SIGKILL
            await asyncio.sleep(1)


def _commits(client: redis.Redis, namespace: str, n: int, total: int) -> None:
    limits = RateLimits(tools={"email_send": ToolLimits(daily_cap=DAILY_CAP)})
    caps = RedisToolCaps(client, limits, namespace=namespace, clock=TickingClock(DAY))
    _barrier(client, namespace, total)
    print(sum(caps.take_commit("email_send") for _ in range(n)), flush=True)


async def _budget(client: redis.Redis, namespace: str, n: int, total: int) -> None:
    async def would_wait(_seconds: float) -> None:
        raise WouldWait

    budget = RedisLLMBudget(
        client, RPM, 100_000, namespace=namespace, clock=lambda: FROZEN_S, sleep=would_wait
    )
    _barrier(client, namespace, total)
    outcomes = await asyncio.gather(
        *(budget.acquire(100) for _ in range(n)), return_exceptions=True
    )
    unexpected = [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, WouldWait)
    ]
    if unexpected:
        raise unexpected[0]
    print(budget.requests_granted, flush=True)


def main(mode: str, url: str, namespace: str, *rest: str) -> None:
    """Run one mode against the Redis at ``url``, under ``namespace``."""
    with redis.Redis.from_url(url) as client:
        if mode == "slots":
            asyncio.run(_slots(client, namespace, int(rest[0]), int(rest[1])))
        elif mode == "hold":
            asyncio.run(_hold(client, namespace, float(rest[0])))
        elif mode == "commits":
            _commits(client, namespace, int(rest[0]), int(rest[1]))
        elif mode == "budget":
            asyncio.run(_budget(client, namespace, int(rest[0]), int(rest[1])))
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
