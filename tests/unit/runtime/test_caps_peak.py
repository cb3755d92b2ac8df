"""The peak in-flight gauge of ToolCaps: it reaches the cap under contention, never passes it."""

from __future__ import annotations

import asyncio

from agentlab.policy import RateLimits, ToolLimits
from agentlab.runtime import ToolCaps


def test_the_peak_reaches_the_cap_under_contention_and_never_passes_it() -> None:
    caps = ToolCaps(RateLimits(tools={"erp_api": ToolLimits(concurrency=3)}))
    seen: list[int] = []

    async def call() -> None:
        async with caps.slot("erp_api"):
            seen.append(caps.in_flight("erp_api"))
            await asyncio.sleep(0)  # let the others queue on the slots
            await asyncio.sleep(0)

    async def scenario() -> None:
        await asyncio.gather(*(call() for _ in range(30)))

    asyncio.run(scenario())
    assert len(seen) == 30
    assert max(seen) == 3
    assert caps.peak_in_flight("erp_api") == 3
    assert caps.in_flight("erp_api") == 0  # the peak stays after the calls are gone


def test_the_peak_counts_one_call_at_a_time_as_one() -> None:
    caps = ToolCaps(RateLimits(tools={"email_send": ToolLimits(concurrency=20)}))

    async def scenario() -> None:
        for _ in range(5):
            async with caps.slot("email_send"):
                await asyncio.sleep(0)

    asyncio.run(scenario())
    assert caps.peak_in_flight("email_send") == 1
    assert caps.peak_in_flight("erp_api") == 0  # never called


def test_a_system_without_a_concurrency_cap_is_not_gauged() -> None:
    caps = ToolCaps(RateLimits(tools={"email_send": ToolLimits(daily_cap=10)}))

    async def scenario() -> None:
        async with caps.slot("email_send"), caps.slot("email_send"):
            pass

    asyncio.run(scenario())
    assert caps.peak_in_flight("email_send") == 0
