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
