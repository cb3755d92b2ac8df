"""Seeded randomness: every draw of the simulator is reproducible from the request.

A draw's seed is a hash of the profile, the task (the first user message), the number of
assistant turns so far, the request's ``seed`` and the draw's purpose, so the same request
gets the same answer, byte for byte, and one decision never shifts another.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Draws:
    """The random draws of one request."""

    profile: str
    task: str
    turn: int
    """Assistant turns so far in the conversation."""
    seed: int | None = None
    """The request's ``seed``, if it sent one."""

    def rng(self, purpose: str, *, turn: int | None = None) -> random.Random:
        """A generator for one purpose; ``turn`` pins a decision to the turn it was first due."""
        at = self.turn if turn is None else turn
        key = f"{self.profile}\x1f{self.task}\x1f{at}\x1f{self.seed}\x1f{purpose}"
        return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))

    def chance(self, purpose: str, rate: float, *, turn: int | None = None) -> bool:
        """True with probability ``rate``."""
        return rate > 0 and self.rng(purpose, turn=turn).random() < rate

    def digest(self, *parts: object) -> str:
        """A stable hex digest of this request's draws and ``parts`` (for ids)."""
        key = "\x1f".join(str(p) for p in (self.profile, self.task, self.turn, self.seed, *parts))
        return hashlib.sha256(key.encode()).hexdigest()
