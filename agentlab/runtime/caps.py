"""Per-system caps from the policy's ``rateLimits.tools``: concurrency, daily and per-run caps.

The article's section 8.1: parallelism is limited by side effects, not by agent count, so each
system (``erp_api``, ``email_send``) gets its own number of calls in flight and its own number
of commits per day; a system may also cap its calls per run (the browser's 20 actions).
These counters live in this process; caps shared by several machines
need a shared counter (Redis, in the scale-out work).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, date

from agentlab.core.clock import Clock, SystemClock
from agentlab.policy import RateLimits, RetryPolicy
from agentlab.store.audit import AuditRecord


class ToolCaps:
    """Concurrency slots and daily commit counts per system.

    Args:
        limits: The policy's ``rateLimits``.
        clock: Tells the day for daily caps (UTC).
    """

    def __init__(self, limits: RateLimits, *, clock: Clock | None = None) -> None:
        self._limits = limits
        self._clock = clock or SystemClock()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._in_flight: Counter[str] = Counter()
        self._peak_in_flight: Counter[str] = Counter()
        self._commits: Counter[tuple[str, date]] = Counter()
        self._run_calls: dict[tuple[str, str], set[str]] = {}

    @asynccontextmanager
    async def slot(self, system: str) -> AsyncIterator[None]:
        """Hold one of the system's concurrency slots while a call is in flight.

        A call waits here when the system's ``concurrency`` calls are already out.
        """
        limit = self._limits.tools.get(system)
        if limit is None or limit.concurrency is None:
            yield
            return
        if system not in self._slots:
            self._slots[system] = asyncio.Semaphore(limit.concurrency)
        async with self._slots[system]:
            self._in_flight[system] += 1
            self._peak_in_flight[system] = max(
                self._peak_in_flight[system], self._in_flight[system]
            )
            try:
                yield
            finally:
                self._in_flight[system] -= 1

    def in_flight(self, system: str) -> int:
        """Calls to ``system`` holding a slot now."""
        return self._in_flight[system]

    def peak_in_flight(self, system: str) -> int:
        """The most calls to ``system`` that held a slot at one moment, since these caps began.

        A gauge for benchmarks and operators: under load it should reach the system's
        ``concurrency`` and never pass it. A system with no concurrency cap reads 0.
        """
        return self._peak_in_flight[system]

    def take_commit(self, system: str) -> bool:
        """Count one commit against the system's daily cap; False when the cap is reached.

        Check and count happen together, with no await between them, so concurrent calls on
        one event loop can never overshoot the cap.
        """
        limit = self._limits.tools.get(system)
        if limit is None or limit.daily_cap is None:
            return True
        key = (system, self._today())
        if self._commits[key] >= limit.daily_cap:
            return False
        self._commits[key] += 1
        return True

    def take_run_call(self, run_id: str, system: str, step_id: str) -> bool:
        """Count step ``step_id`` against the system's calls per run; False when none are left.

        A step is counted once, however often it is checked (a resumed or approved step is
        checked again), so a cap of 20 lets exactly 20 steps through.
        """
        limit = self._limits.tools.get(system)
        if limit is None or limit.per_run_cap is None:
            return True
        taken = self._run_calls.setdefault((run_id, system), set())
        if step_id in taken:
            return True
        if len(taken) >= limit.per_run_cap:
            return False
        taken.add(step_id)
        return True

    def run_calls(self, run_id: str, system: str) -> int:
        """Steps of ``run_id`` counted against ``system``'s per-run cap."""
        return len(self._run_calls.get((run_id, system), ()))

    def count_from_audit(
        self,
        records: Iterable[AuditRecord],
        *,
        system_of: Callable[[str], str | None],
        system_called: Callable[[str], str | None] | None = None,
    ) -> None:
        """Count what the audit log already holds: today's commits, and calls per run.

        Args:
            records: The audit log's records.
            system_of: The system a tool writes to, or None for a tool that does not write.
            system_called: The system any tool reaches; with it, the steps of each run that
                got past policy count against per-run caps, so a run resumed in a new
                process does not get a fresh allowance.
        """
        capped = {
            name for name, limit in self._limits.tools.items() if limit.per_run_cap is not None
        }
        today = self._today()
        for record in records:
            if (
                system_called is not None
                and record.tool is not None
                # a block inside the system (it has a latency) was a call all the same
                and (
                    record.decision not in ("blocked", "invalid")
                    or (record.decision == "blocked" and record.latency_ms is not None)
                )
                and record.step_id is not None
                and (called := system_called(record.tool)) in capped
            ):
                self._run_calls.setdefault((str(record.run_id), called), set()).add(
                    str(record.step_id)
                )
            if record.decision != "committed" or record.tool is None:
                continue
            system = system_of(record.tool)
            if system is not None and record.at.astimezone(UTC).date() == today:
                self._commits[(system, today)] += 1

    def _today(self) -> date:
        return self._clock.now().astimezone(UTC).date()

    def give_back_commit(self, system: str) -> None:
        """Undo :meth:`take_commit` for a commit that made no change (it failed for good)."""
        key = (system, self._today())
        if self._commits[key] > 0:
            self._commits[key] -= 1

    def commits_today(self, system: str) -> int:
        """Commits counted against ``system`` today."""
        return self._commits[(system, self._today())]

    def retry_policy(self, system: str) -> RetryPolicy:
        """The system's retry policy; one attempt and no retry when none is configured."""
        limit = self._limits.tools.get(system)
        if limit is None or limit.retry is None:
            return RetryPolicy(max_attempts=1)
        return limit.retry


def backoff_ms(retry: RetryPolicy, retry_number: int) -> int:
    """The wait before retry ``retry_number`` (1 for the first): the list's entry, or its last.

    With no list configured, retries come without a wait.
    """
    if not retry.backoff_ms:
        return 0
    return retry.backoff_ms[min(retry_number, len(retry.backoff_ms)) - 1]
