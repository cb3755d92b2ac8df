"""A monotonic clock that moves only when someone sleeps: waits are exact, and instant."""

from __future__ import annotations

import asyncio


class FakeTime:
    """``monotonic`` and ``sleep`` for an LLM budget or a model client under test."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)  # let other tasks run meanwhile, as a real sleep would
        self.now += seconds
