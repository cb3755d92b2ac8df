"""The LLM budget: requests and tokens per minute, enforced by waiting, never by failing.

Evaluation runs are most often cursed for 429s in the middle of a suite. The budget keeps a
run (or many concurrent runs sharing one budget) under the policy's ``rateLimits.llm``:
two token buckets, one of requests and one of tokens, each holding a minute's worth and
refilling continuously. A request that finds a bucket short waits until it refills, says so
through ``on_wait`` (progress output) and the log, and then goes. When the endpoint answers
429 anyway, :meth:`LLMBudget.backoff` pauses everyone sharing the budget for the
``retry-after`` the endpoint asked for.

Time comes from an injected monotonic clock and sleep, so tests are exact with no real
sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from agentlab.core.errors import ConfigError

logger = logging.getLogger(__name__)

_SECONDS_PER_MINUTE = 60.0
_TOLERANCE_S = 1e-6  # float rounding after an exact sleep must not cause a second wait


class RateBudget(Protocol):
    """What a model client needs of an LLM budget; :class:`LLMBudget` is the in-process one.

    The Redis-backed budget in ``agentlab.adapters.redis_limits`` is the other: the same
    waits, shared by every worker of a cluster.
    """

    @property
    def requests_granted(self) -> int:
        """How many requests :meth:`acquire` has let through (in this process)."""
        ...

    @property
    def total_waited_s(self) -> float:
        """The seconds requests together have waited for the budget (in this process)."""
        ...

    async def acquire(self, estimated_tokens: int) -> float:
        """Wait until one request of about ``estimated_tokens`` fits; the seconds waited."""
        ...

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket with the tokens the answer used."""
        ...

    def backoff(self, retry_after_s: float) -> None:
        """Pause every request sharing the budget, after the endpoint answered 429."""
        ...


class _LlmLimits(Protocol):
    @property
    def requests_per_minute(self) -> int: ...
    @property
    def tokens_per_minute(self) -> int: ...


class _RateLimits(Protocol):
    @property
    def llm(self) -> _LlmLimits | None: ...


class _HasRateLimits(Protocol):
    # The policy layer is a sibling of llm: it is described here, not imported (STYLE.md 2).
    @property
    def rate_limits(self) -> _RateLimits: ...


class _Bucket:
    """A token bucket: holds up to ``capacity``, refills at ``capacity`` per minute.

    The level may go below zero when :meth:`LLMBudget.settle` finds that a request used more
    than estimated; later requests then wait until the debt is paid back.
    """

    def __init__(self, capacity: int, label: str, now: float) -> None:
        self.capacity = float(capacity)
        self.rate_per_s = capacity / _SECONDS_PER_MINUTE
        self.label = label
        self.level = float(capacity)
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.rate_per_s)
        self.updated = max(self.updated, now)

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` is in the bucket (after :meth:`refill`)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing / self.rate_per_s


def check_limits(requests_per_minute: int, tokens_per_minute: int) -> None:
    """Refuse per-minute limits that are not positive whole numbers (any budget's check).

    Raises:
        ConfigError: naming the limit and the value it had.
    """
    for name, value in (
        ("requests_per_minute", requests_per_minute),
        ("tokens_per_minute", tokens_per_minute),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(
                f"LLM budget: {name} must be a positive whole number, not {value!r}",
                hint="set rateLimits.llm in the policy to the endpoint's limits",
            )


def _format_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class LLMBudget:
    """Requests-per-minute and tokens-per-minute for one endpoint, shared by every run.

    :meth:`acquire` before each request waits until both buckets hold enough, then takes
    one request and the estimated tokens; :meth:`settle` after the answer corrects the token
    bucket with the real usage. One budget may be shared by any number of concurrent asyncio
    tasks: waiters are served first come, first served.

    Args:
        requests_per_minute: Requests allowed per minute (the policy's
            ``rateLimits.llm.requests_per_minute``); also the largest burst.
        tokens_per_minute: Prompt plus completion tokens allowed per minute; also the
            largest burst, so no single request may need more.
        clock: Monotonic seconds; ``time.monotonic`` by default.
        sleep: An awaitable sleep; ``asyncio.sleep`` by default.
        on_wait: Called with a sentence each time a request must wait, e.g.
            ``LLM budget: waiting 2.4 s for tokens-per-minute (200000/min)``; for progress
            output. Every wait is logged as well.

    Raises:
        ConfigError: a limit is not a positive number.
    """

    def __init__(
        self,
        requests_per_minute: int,
        tokens_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        check_limits(requests_per_minute, tokens_per_minute)
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        now = clock()
        self._requests = _Bucket(requests_per_minute, "requests-per-minute", now)
        self._tokens = _Bucket(tokens_per_minute, "tokens-per-minute", now)
        self._paused_until = now
        self._pause_reason = ""
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._requests_granted = 0
        self._total_waited_s = 0.0

    @classmethod
    def from_policy(
        cls,
        policy: _HasRateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_wait: Callable[[str], None] | None = None,
    ) -> LLMBudget | None:
        """The budget a policy's ``rateLimits.llm`` block sets.

        Args:
            policy: A :class:`~agentlab.policy.Policy`.
            clock: As for the constructor.
            sleep: As for the constructor.
            on_wait: As for the constructor.

        Returns:
            The budget, or None when the policy sets no LLM limits (nothing to enforce).
        """
        limits = policy.rate_limits.llm
        if limits is None:
            return None
        return cls(
            limits.requests_per_minute,
            limits.tokens_per_minute,
            clock=clock,
            sleep=sleep,
            on_wait=on_wait,
        )

    @property
    def requests_granted(self) -> int:
        """How many requests :meth:`acquire` has let through so far, retries included."""
        return self._requests_granted

    @property
    def total_waited_s(self) -> float:
        """The seconds all requests together have waited for this budget."""
        return self._total_waited_s

    def _lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; a notebook may run several in turn.
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            for old in [old for old in self._locks if old.is_closed()]:
                del self._locks[old]
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def acquire(self, estimated_tokens: int) -> float:
        """Wait until one request of about ``estimated_tokens`` fits, then take it.

        Never fails for lack of budget: it waits, and reports each wait through ``on_wait``
        and the log. Concurrent callers are served in the order they arrived; one that
        queues behind another's wait has waited too, and its return value says so.

        Args:
            estimated_tokens: Prompt tokens plus the completion tokens the request may use;
                corrected afterwards with :meth:`settle`.

        Returns:
            The seconds this call waited, from the call to the grant; 0 when it did not.

        Raises:
            ConfigError: the request needs more tokens than ``tokens_per_minute`` allows in
                all, so no amount of waiting would let it through.
        """
        if estimated_tokens < 0:
            raise ValueError(f"estimated_tokens must be >= 0, not {estimated_tokens}")
        if estimated_tokens > self.tokens_per_minute:
            raise ConfigError(
                f"LLM budget: a request of about {estimated_tokens} tokens is larger than "
                f"tokens_per_minute ({self.tokens_per_minute}/min), so it could never be sent",
                hint="raise rateLimits.llm.tokens_per_minute in the policy to the endpoint's "
                "limit, or send a shorter prompt or a lower max_tokens",
            )
        entered = self._clock()
        lock = self._lock()
        # Time spent queueing behind another request's wait is time waited for the budget too.
        has_waited = lock.locked()
        async with lock:
            while True:
                now = self._clock()
                self._requests.refill(now)
                self._tokens.refill(now)
                waits = [
                    (self._paused_until - now, self._pause_reason),
                    (self._requests.wait_s(1), self._describe(self._requests)),
                    (self._tokens.wait_s(estimated_tokens), self._describe(self._tokens)),
                ]
                wait_s, reason = max(waits, key=lambda item: item[0])
                if wait_s <= _TOLERANCE_S:
                    break
                message = f"LLM budget: waiting {_format_s(wait_s)} for {reason}"
                logger.info("%s", message)
                if self._on_wait is not None:
                    self._on_wait(message)
                has_waited = True
                await self._sleep(wait_s)
            waited = max(0.0, self._clock() - entered) if has_waited else 0.0
            self._requests.level -= 1
            self._tokens.level -= estimated_tokens
            self._requests_granted += 1
            self._total_waited_s += waited
        return waited

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once the answer says how many tokens were used.

        Args:
            estimated_tokens: What was passed to :meth:`acquire`.
            actual_tokens: The answer's prompt plus completion tokens; 0 for a request the
                endpoint refused (a 429 or an error), which used none.
        """
        now = self._clock()
        self._tokens.refill(now)
        self._tokens.level = min(
            self._tokens.capacity, self._tokens.level + estimated_tokens - actual_tokens
        )

    def backoff(self, retry_after_s: float) -> None:
        """Pause every request sharing this budget, after the endpoint answered 429.

        Args:
            retry_after_s: How long the endpoint asked to wait (its ``retry-after``).
        """
        now = self._clock()
        until = now + max(0.0, retry_after_s)
        if until > self._paused_until:
            self._paused_until = until
            self._pause_reason = (
                f"the endpoint's 429 (it asked to retry after {_format_s(retry_after_s)})"
            )

    @staticmethod
    def _describe(bucket: _Bucket) -> str:
        return f"{bucket.label} ({int(bucket.capacity)}/min)"
