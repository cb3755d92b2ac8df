"""The LLM budget waits (and says so) instead of failing; exact times from a fake clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agentlab.core.errors import ConfigError
from agentlab.llm import LLMBudget
from agentlab.policy import default_policy, parse_policy
from tests.unit.llm._fake_time import FakeTime


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def budget(fake: FakeTime, rpm: int, tpm: int, messages: list[str] | None = None) -> LLMBudget:
    return LLMBudget(
        rpm,
        tpm,
        clock=fake.monotonic,
        sleep=fake.sleep,
        on_wait=None if messages is None else messages.append,
    )


def test_a_minutes_worth_of_requests_goes_through_without_waiting(fake: FakeTime) -> None:
    llm = budget(fake, rpm=5, tpm=10_000)

    async def go() -> list[float]:
        return [await llm.acquire(100) for _ in range(5)]

    assert asyncio.run(go()) == [0, 0, 0, 0, 0]
    assert fake.sleeps == []
    assert llm.requests_granted == 5


def test_the_request_after_the_burst_waits_for_requests_per_minute_and_says_so(
    fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[str] = []
    llm = budget(fake, rpm=2, tpm=10_000, messages=messages)

    async def go() -> list[float]:
        return [await llm.acquire(10) for _ in range(3)]

    with caplog.at_level(logging.INFO, logger="agentlab.llm.budget"):
        waits = asyncio.run(go())
    assert waits == [0, 0, pytest.approx(30.0)]
    assert messages == ["LLM budget: waiting 30.0 s for requests-per-minute (2/min)"]
    assert messages[0] in caplog.messages
    assert llm.total_waited_s == pytest.approx(30.0)


def test_a_large_request_waits_for_tokens_per_minute(fake: FakeTime) -> None:
    messages: list[str] = []
    llm = budget(fake, rpm=100, tpm=1000, messages=messages)

    async def go() -> list[float]:
        return [await llm.acquire(800), await llm.acquire(500)]

    # 300 tokens short, refilled at 1000 per 60 s: 18 s.
    assert asyncio.run(go()) == [0, pytest.approx(18.0)]
    assert messages == ["LLM budget: waiting 18.0 s for tokens-per-minute (1000/min)"]


def test_concurrent_requests_are_spaced_by_the_refill_rate_in_arrival_order(
    fake: FakeTime,
) -> None:
    messages: list[str] = []
    llm = budget(fake, rpm=2, tpm=10_000, messages=messages)
    granted: list[tuple[int, float]] = []

    async def one(n: int) -> float:
        waited = await llm.acquire(10)
        granted.append((n, fake.now - 1000.0))
        return waited

    async def go() -> list[float]:
        return await asyncio.gather(*(one(n) for n in range(5)))

    waits = asyncio.run(go())
    assert [n for n, _ in granted] == [0, 1, 2, 3, 4]
    assert [at for _, at in granted] == pytest.approx([0, 0, 30, 60, 90])
    # each waited from the start until its grant, queueing behind the ones before it
    assert waits == pytest.approx([0, 0, 30, 60, 90])
    assert fake.sleeps == pytest.approx([30, 30, 30])
    assert len(messages) == 3
    assert llm.requests_granted == 5


def test_settle_charges_tokens_used_beyond_the_estimate(fake: FakeTime) -> None:
    llm = budget(fake, rpm=100, tpm=1000)

    async def go() -> float:
        await llm.acquire(100)
        llm.settle(100, 700)  # the answer was longer than estimated: 300 tokens are left
        return await llm.acquire(500)

    # 200 tokens short at 1000 per 60 s: 12 s.
    assert asyncio.run(go()) == pytest.approx(12.0)


def test_settle_gives_back_tokens_a_request_did_not_use(fake: FakeTime) -> None:
    llm = budget(fake, rpm=100, tpm=1000)

    async def go() -> float:
        await llm.acquire(900)
        llm.settle(900, 100)  # back to 900 left
        return await llm.acquire(900)

    assert asyncio.run(go()) == 0


def test_the_bucket_never_holds_more_than_a_minutes_worth(fake: FakeTime) -> None:
    llm = budget(fake, rpm=100, tpm=1000)

    async def go() -> float:
        llm.settle(5000, 0)  # a refund of more than was taken is capped
        fake.now += 3600  # an idle hour does not bank more than a minute either
        await llm.acquire(1000)
        return await llm.acquire(100)

    assert asyncio.run(go()) == pytest.approx(6.0)


def test_a_request_larger_than_the_per_minute_tokens_is_an_error_not_a_forever_wait(
    fake: FakeTime,
) -> None:
    llm = budget(fake, rpm=100, tpm=1000)
    with pytest.raises(ConfigError, match=r"tokens_per_minute \(1000/min\)") as caught:
        asyncio.run(llm.acquire(1001))
    assert caught.value.hint is not None
    assert "rateLimits.llm.tokens_per_minute" in caught.value.hint
    assert fake.sleeps == []


def test_backoff_after_a_429_pauses_everyone_sharing_the_budget(fake: FakeTime) -> None:
    messages: list[str] = []
    llm = budget(fake, rpm=100, tpm=10_000, messages=messages)

    async def go() -> list[float]:
        llm.backoff(2.5)
        return await asyncio.gather(llm.acquire(10), llm.acquire(10))

    # the second queued behind the first's wait: both waited for the 429's pause
    assert asyncio.run(go()) == [pytest.approx(2.5), pytest.approx(2.5)]
    assert messages == [
        "LLM budget: waiting 2.5 s for the endpoint's 429 (it asked to retry after 2.5 s)"
    ]


def test_a_shorter_backoff_does_not_cut_a_longer_pause(fake: FakeTime) -> None:
    llm = budget(fake, rpm=100, tpm=10_000)

    async def go() -> float:
        llm.backoff(3.0)
        llm.backoff(0.02)
        return await llm.acquire(10)

    assert asyncio.run(go()) == pytest.approx(3.0)


def test_short_waits_are_reported_in_milliseconds(fake: FakeTime) -> None:
    messages: list[str] = []
    llm = budget(fake, rpm=100, tpm=10_000, messages=messages)
    llm.backoff(0.02)
    asyncio.run(llm.acquire(10))
    assert messages == [
        "LLM budget: waiting 20 ms for the endpoint's 429 (it asked to retry after 20 ms)"
    ]


def test_one_budget_serves_one_event_loop_after_another(fake: FakeTime) -> None:
    llm = budget(fake, rpm=1, tpm=10_000)

    async def two() -> list[float]:
        return await asyncio.gather(llm.acquire(1), llm.acquire(1))

    assert asyncio.run(two()) == [0, pytest.approx(60.0)]
    assert asyncio.run(two()) == [pytest.approx(60.0), pytest.approx(120.0)]


def test_the_budget_comes_from_the_policys_rate_limits(fake: FakeTime) -> None:
    llm = LLMBudget.from_policy(default_policy(), clock=fake.monotonic, sleep=fake.sleep)
    assert llm is not None
    assert (llm.requests_per_minute, llm.tokens_per_minute) == (300, 200_000)


def test_a_policy_without_llm_limits_gives_no_budget() -> None:
    policy = parse_policy("phase: 1\nactors: {}\nuse_cases: {}\n")
    assert LLMBudget.from_policy(policy) is None


@pytest.mark.parametrize(("rpm", "tpm"), [(0, 1000), (10, -1), (True, 1000)])
def test_limits_must_be_positive_whole_numbers(rpm: int, tpm: int) -> None:
    with pytest.raises(ConfigError, match="positive whole number"):
        LLMBudget(rpm, tpm)
