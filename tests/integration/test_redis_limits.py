"""Caps and the LLM budget shared through a real Redis, by coroutines, clients and processes.

The behaviours ToolCaps and LLMBudget have are checked on both backends (parametrised);
what only sharing can show is checked against Redis, with worker processes from
``tests/integration/_redis_limits_worker.py``. Nothing here asserts on elapsed time: waits
come from an injected clock, and cross-process moments from counters in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from agentlab.adapters.redis_limits import (
    RedisLLMBudget,
    RedisToolCaps,
    open_shared_limits,
    redact_redis_url,
)
from agentlab.core.clock import TickingClock
from agentlab.core.errors import ConfigError
from agentlab.llm import LLMBudget, RateBudget
from agentlab.policy import RateLimits, ToolLimits, default_policy, parse_policy
from agentlab.runtime import ReviewDecision, ScriptedReviewer, ToolCaps
from agentlab.store.audit import AuditEntry, MemoryAuditLog
from tests.integration import _redis_limits_worker as worker
from tests.unit.llm._fake_time import FakeTime
from tests.unit.runtime._bench import PROCUREMENT, bench, policy_with, run

REPO = Path(__file__).parents[2]
WORKER = "tests.integration._redis_limits_worker"
WORKER_GUARD_S = 120  # a bound on a stuck worker, never a measure of speed

MakeCaps = Callable[..., ToolCaps]
MakeBudget = Callable[..., RateBudget]


class SettableClock:
    """A wall clock the test moves by hand (to cross midnight)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as connection:
        yield connection


@pytest.fixture(params=["memory", "redis"])
def make_caps(request: pytest.FixtureRequest) -> MakeCaps:
    """Builds caps on the parametrised backend; Redis ones share the test's namespace."""
    if request.param == "memory":
        return lambda limits, clock=None: ToolCaps(limits, clock=clock)
    connection: redis.Redis = request.getfixturevalue("client")
    namespace: str = request.getfixturevalue("redis_namespace")
    return lambda limits, clock=None: RedisToolCaps(
        connection, limits, namespace=namespace, clock=clock
    )


@pytest.fixture(params=["memory", "redis"])
def make_budget(request: pytest.FixtureRequest) -> MakeBudget:
    """Builds a budget on the parametrised backend, on a fake clock and sleep."""
    if request.param == "memory":

        def memory(
            rpm: int, tpm: int, fake: FakeTime, messages: list[str] | None = None
        ) -> RateBudget:
            on_wait = None if messages is None else messages.append
            return LLMBudget(rpm, tpm, clock=fake.monotonic, sleep=fake.sleep, on_wait=on_wait)

        return memory
    connection: redis.Redis = request.getfixturevalue("client")
    namespace: str = request.getfixturevalue("redis_namespace")

    def shared(rpm: int, tpm: int, fake: FakeTime, messages: list[str] | None = None) -> RateBudget:
        on_wait = None if messages is None else messages.append
        return RedisLLMBudget(
            connection,
            rpm,
            tpm,
            namespace=namespace,
            clock=fake.monotonic,
            sleep=fake.sleep,
            on_wait=on_wait,
        )

    return shared


def spawn(*args: str) -> subprocess.Popen[str]:
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", WORKER, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": python_path},
    )


def outputs(*processes: subprocess.Popen[str]) -> list[str]:
    """Each worker's stdout, after it exited cleanly."""
    lines = []
    for process in processes:
        out, err = process.communicate(timeout=WORKER_GUARD_S)
        assert process.returncode == 0, err
        lines.append(out.strip())
    return lines


# -- the behaviours of ToolCaps, on both backends ----------------------------------------------


def test_the_peak_reaches_the_cap_under_contention_and_never_passes_it(make_caps: MakeCaps) -> None:
    caps = make_caps(RateLimits(tools={"erp_api": ToolLimits(concurrency=3)}))
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


def test_the_peak_counts_one_call_at_a_time_as_one(make_caps: MakeCaps) -> None:
    caps = make_caps(RateLimits(tools={"email_send": ToolLimits(concurrency=20)}))

    async def scenario() -> None:
        for _ in range(5):
            async with caps.slot("email_send"):
                await asyncio.sleep(0)

    asyncio.run(scenario())
    assert caps.peak_in_flight("email_send") == 1
    assert caps.peak_in_flight("erp_api") == 0  # never called


def test_a_system_without_a_concurrency_cap_is_not_gauged(make_caps: MakeCaps) -> None:
    caps = make_caps(RateLimits(tools={"email_send": ToolLimits(daily_cap=10)}))

    async def scenario() -> None:
        async with caps.slot("email_send"), caps.slot("email_send"):
            assert caps.in_flight("email_send") == 0

    asyncio.run(scenario())
    assert caps.peak_in_flight("email_send") == 0


def test_a_slot_comes_back_when_its_call_fails_or_is_cancelled(make_caps: MakeCaps) -> None:
    caps = make_caps(RateLimits(tools={"erp_api": ToolLimits(concurrency=1)}))

    async def scenario() -> None:
        with pytest.raises(RuntimeError):
            async with caps.slot("erp_api"):
                raise RuntimeError("the call failed")
        assert caps.in_flight("erp_api") == 0

        holding = asyncio.Event()

        async def hold_forever() -> None:
            async with caps.slot("erp_api"):
                holding.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(hold_forever())
        await holding.wait()
        assert caps.in_flight("erp_api") == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert caps.in_flight("erp_api") == 0
        async with caps.slot("erp_api"):  # the one slot is free again
            assert caps.in_flight("erp_api") == 1

    asyncio.run(scenario())


def test_the_daily_cap_refuses_the_commit_after_the_cap_and_a_new_day_starts_over(
    make_caps: MakeCaps,
) -> None:
    clock = SettableClock(datetime(2026, 3, 1, 23, 59, tzinfo=UTC))
    caps = make_caps(RateLimits(tools={"email_send": ToolLimits(daily_cap=3)}), clock=clock)

    assert [caps.take_commit("email_send") for _ in range(5)] == [True] * 3 + [False] * 2
    assert caps.commits_today("email_send") == 3
    caps.give_back_commit("email_send")  # a commit that made no change
    assert caps.commits_today("email_send") == 2
    assert caps.take_commit("email_send")
    assert not caps.take_commit("email_send")
    assert caps.take_commit("erp_api")  # no daily cap on that system
    assert caps.commits_today("erp_api") == 0

    clock.at += timedelta(minutes=2)  # past midnight UTC
    assert caps.commits_today("email_send") == 0
    assert caps.take_commit("email_send")


def test_giving_back_never_counts_below_zero(make_caps: MakeCaps) -> None:
    caps = make_caps(RateLimits(tools={"email_send": ToolLimits(daily_cap=1)}))
    caps.give_back_commit("email_send")
    assert caps.commits_today("email_send") == 0
    assert caps.take_commit("email_send")
    assert not caps.take_commit("email_send")


def test_a_per_run_cap_counts_each_step_once_and_each_run_apart(make_caps: MakeCaps) -> None:
    caps = make_caps(RateLimits(tools={"browser": ToolLimits(per_run_cap=2)}))
    assert caps.take_run_call("run-1", "browser", "s1")
    assert caps.take_run_call("run-1", "browser", "s1")  # checked again: still one step
    assert caps.take_run_call("run-1", "browser", "s2")
    assert not caps.take_run_call("run-1", "browser", "s3")
    assert caps.take_run_call("run-1", "browser", "s2")  # a counted step stays allowed
    assert caps.take_run_call("run-2", "browser", "s1")
    assert caps.take_run_call("run-1", "erp_api", "s4")  # no cap on that system
    assert caps.run_calls("run-1", "browser") == 2
    assert caps.run_calls("run-2", "browser") == 1


def _audit_entry(step: str, decision: str, latency_ms: float | None, tool: str) -> AuditEntry:
    return AuditEntry(
        at=datetime(2026, 1, 1, 8, tzinfo=UTC),
        run_id="run-1",
        step_id=step,
        actor="sam",
        decision=decision,  # type: ignore[arg-type]
        tool=tool,
        arguments={},
        latency_ms=latency_ms,
    )


def test_counts_rebuilt_from_the_audit_log_match(make_caps: MakeCaps) -> None:
    log = MemoryAuditLog()
    for record in (
        _audit_entry("s1", "committed", 40.0, "browser_open"),
        _audit_entry("s2", "blocked", 35.0, "browser_open"),  # blocked inside the browser
        _audit_entry("s3", "blocked", None, "browser_open"),  # blocked before the call
        _audit_entry("s4", "invalid", None, "browser_open"),
        _audit_entry("s5", "committed", 80.0, "send_email"),
        _audit_entry("s6", "committed", 80.0, "send_email"),
    ):
        log.append(record)
    limits = RateLimits(
        tools={"browser": ToolLimits(per_run_cap=20), "email_send": ToolLimits(daily_cap=5)}
    )
    caps = make_caps(limits, clock=SettableClock(datetime(2026, 1, 1, 12, tzinfo=UTC)))
    caps.count_from_audit(
        log.read(),
        system_of=lambda tool: "email_send" if tool == "send_email" else None,
        system_called=lambda tool: "email_send" if tool == "send_email" else "browser",
    )
    assert caps.run_calls("run-1", "browser") == 2
    assert caps.commits_today("email_send") == 2


# -- the behaviours of LLMBudget, on both backends ---------------------------------------------


def test_a_minutes_worth_of_requests_goes_through_without_waiting(make_budget: MakeBudget) -> None:
    fake = FakeTime()
    llm = make_budget(5, 10_000, fake)

    async def go() -> list[float]:
        return [await llm.acquire(100) for _ in range(5)]

    assert asyncio.run(go()) == [0, 0, 0, 0, 0]
    assert fake.sleeps == []
    assert llm.requests_granted == 5


def test_the_request_after_the_burst_waits_for_requests_per_minute_and_says_so(
    make_budget: MakeBudget,
) -> None:
    fake = FakeTime()
    messages: list[str] = []
    llm = make_budget(2, 10_000, fake, messages)

    async def go() -> list[float]:
        return [await llm.acquire(10) for _ in range(3)]

    assert asyncio.run(go()) == [0, 0, pytest.approx(30.0)]
    assert messages == ["LLM budget: waiting 30.0 s for requests-per-minute (2/min)"]
    assert llm.total_waited_s == pytest.approx(30.0)


def test_a_large_request_waits_for_tokens_per_minute(make_budget: MakeBudget) -> None:
    fake = FakeTime()
    messages: list[str] = []
    llm = make_budget(100, 1000, fake, messages)

    async def go() -> list[float]:
        return [await llm.acquire(800), await llm.acquire(500)]

    assert asyncio.run(go()) == [0, pytest.approx(18.0)]  # 300 short at 1000 per 60 s
    assert messages == ["LLM budget: waiting 18.0 s for tokens-per-minute (1000/min)"]


def test_concurrent_requests_of_one_process_are_spaced_in_arrival_order(
    make_budget: MakeBudget,
) -> None:
    fake = FakeTime()
    llm = make_budget(2, 10_000, fake)
    granted: list[int] = []

    async def one(n: int) -> float:
        waited = await llm.acquire(10)
        granted.append(n)
        return waited

    async def go() -> list[float]:
        return await asyncio.gather(*(one(n) for n in range(5)))

    assert asyncio.run(go()) == pytest.approx([0, 0, 30, 60, 90])
    assert granted == [0, 1, 2, 3, 4]
    assert fake.sleeps == pytest.approx([30, 30, 30])


def test_settle_charges_tokens_used_beyond_the_estimate_and_gives_back_unused_ones(
    make_budget: MakeBudget,
) -> None:
    fake = FakeTime()
    llm = make_budget(100, 1000, fake)

    async def go() -> list[float]:
        await llm.acquire(900)
        llm.settle(900, 100)  # 800 given back: 900 left
        no_wait = await llm.acquire(900)
        llm.settle(900, 1100)  # 200 more charged: -200 left
        return [no_wait, await llm.acquire(100)]

    assert asyncio.run(go()) == [0, pytest.approx(18.0)]  # 300 short at 1000 per 60 s


def test_the_bucket_never_holds_more_than_a_minutes_worth(make_budget: MakeBudget) -> None:
    fake = FakeTime()
    llm = make_budget(100, 1000, fake)

    async def go() -> float:
        llm.settle(5000, 0)  # a refund of more than was taken is capped
        fake.now += 3600  # an idle hour does not bank more than a minute either
        await llm.acquire(1000)
        return await llm.acquire(100)

    assert asyncio.run(go()) == pytest.approx(6.0)


def test_a_request_larger_than_the_per_minute_tokens_is_an_error_not_a_forever_wait(
    make_budget: MakeBudget,
) -> None:
    fake = FakeTime()
    llm = make_budget(100, 1000, fake)
    with pytest.raises(ConfigError, match=r"tokens_per_minute \(1000/min\)"):
        asyncio.run(llm.acquire(1001))
    assert fake.sleeps == []


def test_a_429_pauses_everyone_and_a_shorter_one_does_not_cut_it(make_budget: MakeBudget) -> None:
    fake = FakeTime()
    messages: list[str] = []
    llm = make_budget(100, 10_000, fake, messages)

    async def go() -> list[float]:
        llm.backoff(2.5)
        llm.backoff(0.02)
        return await asyncio.gather(llm.acquire(10), llm.acquire(10))

    assert asyncio.run(go()) == [pytest.approx(2.5), pytest.approx(2.5)]
    assert messages == [
        "LLM budget: waiting 2.5 s for the endpoint's 429 (it asked to retry after 2.5 s)"
    ]


# -- caps shared through Redis -----------------------------------------------------------------


def test_two_caps_on_one_namespace_share_every_count_and_other_namespaces_do_not(
    redis_url: str, redis_namespace: str
) -> None:
    limits = RateLimits(
        tools={
            "erp_api": ToolLimits(concurrency=1),
            "email_send": ToolLimits(daily_cap=2),
            "browser": ToolLimits(per_run_cap=1),
        }
    )
    with (
        redis.Redis.from_url(redis_url) as one,
        redis.Redis.from_url(redis_url) as other,
    ):
        a = RedisToolCaps(one, limits, namespace=redis_namespace)
        b = RedisToolCaps(other, limits, namespace=redis_namespace)
        apart = RedisToolCaps(other, limits, namespace=f"{redis_namespace}:apart")

        assert a.take_commit("email_send")
        assert b.take_commit("email_send")
        assert not a.take_commit("email_send")
        assert not b.take_commit("email_send")
        assert apart.take_commit("email_send")
        assert a.take_run_call("run-1", "browser", "s1")
        assert b.take_run_call("run-1", "browser", "s1")
        assert not b.take_run_call("run-1", "browser", "s2")

        async def scenario() -> None:
            async with a.slot("erp_api"):
                assert b.in_flight("erp_api") == 1
                waiting = asyncio.create_task(_enter(b, "erp_api"))
                for _ in range(20):  # b keeps polling for the slot a holds
                    await asyncio.sleep(0.005)
                assert not waiting.done()
                async with apart.slot("erp_api"):  # another namespace has its own slot
                    pass
            await asyncio.wait_for(waiting, WORKER_GUARD_S)  # a's slot went to b

        asyncio.run(scenario())
        assert b.peak_in_flight("erp_api") == 1


async def _enter(caps: ToolCaps, system: str) -> None:
    async with caps.slot(system):
        pass


def test_counting_from_the_audit_log_never_adds_to_a_shared_count(
    client: redis.Redis, redis_namespace: str
) -> None:
    log = MemoryAuditLog()
    log.append(_audit_entry("s1", "committed", 80.0, "send_email"))
    log.append(_audit_entry("s2", "committed", 80.0, "send_email"))
    limits = RateLimits(tools={"email_send": ToolLimits(daily_cap=5)})
    clock = SettableClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    caps = RedisToolCaps(client, limits, namespace=redis_namespace, clock=clock)
    assert caps.take_commit("email_send")  # counted as it happened, by some worker

    caps.count_from_audit(log.read(), system_of=lambda _tool: "email_send")
    assert caps.commits_today("email_send") == 1  # the shared count already holds commits
    caps.count_from_audit(log.read(), system_of=lambda _tool: "email_send")
    assert caps.commits_today("email_send") == 1


def test_processes_sharing_a_cap_of_three_never_hold_more_than_three_slots(
    redis_url: str, redis_namespace: str, client: redis.Redis
) -> None:
    per_worker = 12
    workers = [
        spawn("slots", redis_url, redis_namespace, str(per_worker), str(2 * per_worker))
        for _ in range(2)
    ]
    assert outputs(*workers) == ["DONE", "DONE"]

    seen = [int(n) for n in client.lrange(f"{redis_namespace}:test:seen", 0, -1)]
    assert len(seen) == 2 * per_worker
    assert max(seen) == worker.SLOT_CAP  # held until every call had arrived: the cap is reached
    limits = RateLimits(tools={"erp_api": ToolLimits(concurrency=worker.SLOT_CAP)})
    caps = RedisToolCaps(client, limits, namespace=redis_namespace)
    assert caps.peak_in_flight("erp_api") == worker.SLOT_CAP
    assert caps.in_flight("erp_api") == 0
    caps.reset_peaks()
    assert caps.peak_in_flight("erp_api") == 0


def test_a_killed_workers_slot_comes_back_after_its_lease_expires(
    redis_url: str, redis_namespace: str, client: redis.Redis
) -> None:
    ttl_s = 1.5
    limits = RateLimits(tools={"erp_api": ToolLimits(concurrency=1)})
    caps = RedisToolCaps(client, limits, namespace=redis_namespace)
    holder = spawn("hold", redis_url, redis_namespace, str(ttl_s))
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "HELD"
        ((_lease, first_expiry_ms),) = client.zrange(
            caps.slots_key("erp_api"), 0, -1, withscores=True
        )
        # The live worker renews its lease: it still holds the slot after the first expiry.
        _wait_until(lambda: _redis_ms(client) > first_expiry_ms + 100)
        assert caps.in_flight("erp_api") == 1
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=WORKER_GUARD_S)
    finally:
        holder.kill()
        holder.communicate()
    _wait_until(lambda: caps.in_flight("erp_api") == 0)  # within a lease, bounded by the guard
    _wait_until(lambda: not client.exists(caps.slots_key("erp_api")))  # no key is left behind

    async def take_it() -> int:
        async with caps.slot("erp_api"):
            return caps.in_flight("erp_api")

    assert asyncio.run(asyncio.wait_for(take_it(), WORKER_GUARD_S)) == 1


def _redis_ms(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds * 1000 + micros / 1000


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WORKER_GUARD_S
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


def test_processes_sharing_a_daily_cap_never_commit_more_than_it_in_total(
    redis_url: str, redis_namespace: str, client: redis.Redis
) -> None:
    workers = [spawn("commits", redis_url, redis_namespace, "40", "2") for _ in range(2)]
    granted = [int(line) for line in outputs(*workers)]
    assert sum(granted) == worker.DAILY_CAP
    limits = RateLimits(tools={"email_send": ToolLimits(daily_cap=worker.DAILY_CAP)})
    caps = RedisToolCaps(client, limits, namespace=redis_namespace, clock=TickingClock(worker.DAY))
    assert caps.commits_today("email_send") == worker.DAILY_CAP
    (key,) = client.keys(f"{redis_namespace}:caps:commits:*")
    assert key.decode().endswith(":email_send:2026-03-01")
    assert 0 < client.ttl(key) <= 2 * 24 * 3600


def test_an_executor_blocks_a_commit_once_the_shared_daily_cap_is_reached(
    client: redis.Redis, redis_namespace: str
) -> None:
    limits = {"tools": {"email_send": {"daily_cap": 3, "allow_domains": ["example.co.jp"]}}}
    policy = policy_with(rateLimits=limits)
    reviewer = ScriptedReviewer(lambda _r: ReviewDecision.approve("rita"))
    mail = {
        "to": ["buyer@example.co.jp"],
        "subject": "PO placed",
        "body": "Placed.",
        "dry_run": False,
        "idempotency_key": "model-chosen-key-0005",
    }

    def shared_caps() -> RedisToolCaps:
        return RedisToolCaps(client, policy.rate_limits, namespace=redis_namespace)

    async def scenario() -> None:
        async with (
            bench(policy, reviewer=reviewer, caps=shared_caps()) as first,
            bench(policy, reviewer=reviewer, caps=shared_caps()) as second,
        ):
            for n, b in enumerate((first, first, second)):
                done = await b.executor.call(
                    b.start(task=f"mail {n}"), PROCUREMENT, "send_email", mail
                )
                assert done.status == "ok", done.message
            for b in (second, first):
                refused = await b.executor.call(
                    b.start(task="one more"), PROCUREMENT, "send_email", mail
                )
                assert refused.status == "blocked"
                assert "daily cap" in refused.message
            assert len((await first.world("GET", "/mail/outbox"))["messages"]) == 2
            assert len((await second.world("GET", "/mail/outbox"))["messages"]) == 1
            assert second.executor.caps.commits_today("email_send") == 3

    run(scenario())


# -- the budget shared through Redis -----------------------------------------------------------


def test_two_clients_share_one_budget(
    client: redis.Redis, redis_url: str, redis_namespace: str
) -> None:
    fake = FakeTime()
    messages: list[str] = []
    with redis.Redis.from_url(redis_url) as other_client:
        one, other = (
            RedisLLMBudget(
                c,
                5,
                100_000,
                namespace=redis_namespace,
                clock=fake.monotonic,
                sleep=fake.sleep,
                on_wait=messages.append,
            )
            for c in (client, other_client)
        )

        async def go() -> list[float]:
            burst = [await b.acquire(100) for b in (one, one, one, other, other)]
            return [*burst, await other.acquire(100)]

        assert asyncio.run(go()) == [0, 0, 0, 0, 0, pytest.approx(12.0)]  # 60 s / 5
        assert messages == ["LLM budget: waiting 12.0 s for requests-per-minute (5/min)"]
        assert (one.requests_granted, other.requests_granted) == (3, 3)
        assert one.cluster_requests_granted() == 6

        one.backoff(30.0)  # a 429 seen by one client pauses the other
        assert asyncio.run(other.acquire(100)) == pytest.approx(30.0)
        assert messages[1] == (
            "LLM budget: waiting 30.0 s for the endpoint's 429 (it asked to retry after 30.0 s)"
        )


def test_processes_sharing_a_budget_never_get_more_than_its_burst(
    redis_url: str, redis_namespace: str
) -> None:
    workers = [spawn("budget", redis_url, redis_namespace, "10", "2") for _ in range(2)]
    granted = [int(line) for line in outputs(*workers)]
    assert sum(granted) == worker.RPM  # the clock is frozen: nothing refills


def test_on_redis_time_the_request_after_the_burst_waits_for_the_refill(
    client: redis.Redis, redis_namespace: str
) -> None:
    asked: list[float] = []

    class Stop(Exception):
        pass

    async def record_and_stop(seconds: float) -> None:
        asked.append(seconds)
        raise Stop

    llm = RedisLLMBudget(client, 2, 10_000, namespace=redis_namespace, sleep=record_and_stop)

    async def go() -> None:
        assert await llm.acquire(10) == 0
        assert await llm.acquire(10) == 0
        await llm.acquire(10)

    with pytest.raises(Stop):
        asyncio.run(go())
    (wait_s,) = asked
    assert 0 < wait_s <= 30.0  # one request short at 2 per minute, less what refilled since
    assert llm.requests_granted == 2


# -- opening, secrets, pickling ----------------------------------------------------------------


def test_open_shared_limits_builds_the_policys_caps_and_budget(
    redis_url: str, redis_namespace: str
) -> None:
    with open_shared_limits(redis_url, default_policy(), namespace=redis_namespace) as limits:
        assert limits.budget is not None
        assert (limits.budget.requests_per_minute, limits.budget.tokens_per_minute) == (
            300,
            200_000,
        )
        assert limits.caps.take_commit("email_send")
        assert limits.caps.commits_today("email_send") == 1
        assert limits.caps.retry_policy("erp_api").max_attempts >= 1
    policy = parse_policy("phase: 1\nactors: {}\nuse_cases: {}\n")
    with open_shared_limits(redis_url, policy, namespace=redis_namespace) as limits:
        assert limits.budget is None


def test_an_unreachable_redis_is_a_config_error_that_names_the_url_but_not_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket_closed_port() as port:
        url = f"redis://agent:s3cret-pw@127.0.0.1:{port}/0"
        with pytest.raises(ConfigError) as caught:
            open_shared_limits(url, default_policy(), connect_timeout_s=2)
    text = str(caught.value)
    assert f"redis://agent:***@127.0.0.1:{port}/0" in text
    assert "s3cret-pw" not in text
    assert "s3cret-pw" not in caplog.text
    assert caught.value.hint is not None
    assert "start redis-server" in caught.value.hint
    assert "--redis-url" in caught.value.hint
    with pytest.raises(ConfigError, match="is not a Redis URL"):
        open_shared_limits("postgresql://u:pw@h/db", default_policy())
    assert redact_redis_url("redis://:pw@h:1/2") == "redis://:***@h:1/2"


@contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port nothing listens on, for as long as the block runs."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield int(bound.getsockname()[1])


def test_shared_limits_refuse_to_be_pickled_with_a_hint(client: redis.Redis) -> None:
    caps = RedisToolCaps(client, RateLimits())
    with pytest.raises(TypeError, match="open_shared_limits"):
        pickle.dumps(caps)
    with pytest.raises(TypeError, match="open_shared_limits"):
        pickle.dumps(RedisLLMBudget(client, 1, 1))
