"""Where time comes from.

Nothing in agentlab calls ``datetime.now()`` directly: time is read from an injected
:class:`Clock`, so a replay or a test sees the same timestamps every time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of timezone-aware timestamps."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)


class TickingClock:
    """A deterministic clock: starts at ``start`` and advances by ``tick`` on every read.

    Thread-safe, so concurrent writers still see strictly increasing times.

    Args:
        start: The first time returned; must be timezone-aware.
        tick: How far each read advances the clock.
    """

    def __init__(
        self,
        start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
        tick: timedelta = timedelta(milliseconds=1),
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("TickingClock needs a timezone-aware start, e.g. tzinfo=UTC")
        self._next = start
        self._tick = tick
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The next time of the sequence."""
        with self._lock:
            current = self._next
            self._next = current + self._tick
            return current


class VirtualClock:
    """A run's modelled time: it moves only when told how long something took.

    The lab gives each run one. Every response from the model or a tool's system that says
    how long it took (the simulator's and the sandbox world's modelled latency, a provider's
    processing time) advances it, so a run's wall time is the sum of its parts, the same in
    a recording and in every replay of it. Each read also advances it by ``tick`` so that
    events stay strictly ordered.

    Args:
        start: The time of the first read; must be timezone-aware.
        tick: How far each read of :meth:`now` advances the clock.
    """

    def __init__(
        self,
        start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
        tick: timedelta = timedelta(microseconds=1),
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start, e.g. tzinfo=UTC")
        self._start = start
        self._tick = tick
        self._reads = 0
        self._elapsed = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The modelled time, one tick later than the last read."""
        with self._lock:
            self._reads += 1
            return self._start + self._elapsed + self._tick * self._reads

    def monotonic(self) -> float:
        """Seconds of modelled time so far (ticks left out), for measuring latencies."""
        with self._lock:
            return self._elapsed.total_seconds()

    def advance(self, milliseconds: float) -> None:
        """Move the clock on by ``milliseconds`` (negative values are ignored)."""
        if milliseconds > 0:
            with self._lock:
                self._elapsed += timedelta(milliseconds=milliseconds)
