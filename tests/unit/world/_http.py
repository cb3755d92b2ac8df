"""Helpers for talking to an in-process world: a client, keys, and a sleep that gates."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from agentlab.world import World, build_world_app

T = TypeVar("T")
KEY = {"Idempotency-Key": "test-key-0000000001"}
ORDER = {"supplier_id": "SUP-000103", "items": [{"sku": "TONER-BK-05", "qty": 4}]}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def key(n: int) -> dict[str, str]:
    """A distinct, valid Idempotency-Key header."""
    return {"Idempotency-Key": f"test-key-{n:010d}"}


def client(world: World | None = None, **app_options: Any) -> httpx.AsyncClient:
    app = build_world_app(world, **app_options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://world")


class Gate:
    """A latency sleep that holds requests until ``expected`` of them wait together.

    Requests overlap for certain, with no clock involved; later ones pass straight through.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.waiting = 0
        self.seconds: list[float] = []
        self._open = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self.waiting += 1
        if self.waiting >= self.expected:
            self._open.set()
        await self._open.wait()
