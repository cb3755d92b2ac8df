"""Typed identifiers and idempotency keys.

Ids are plain strings with a prefix that says what they name (``run_``, ``step_``, ``art_``),
so a log line or a SQL row is readable without a join. They come from an :class:`IdFactory`
seeded from a ``random.Random``, so a replay produces the same ids event for event.

An idempotency key is *derived* from what a side effect is (run, step position, tool and its
arguments), never drawn at random: a retry, or a resume after a crash, derives the same key
again, and the store refuses to commit it twice.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Annotated, NewType

from pydantic import Field, JsonValue, StringConstraints

RunId = NewType("RunId", str)
StepId = NewType("StepId", str)
ArtifactId = NewType("ArtifactId", str)

IDEMPOTENCY_KEY_MIN_LENGTH = 16
IDEMPOTENCY_KEY_MAX_LENGTH = 64

IdempotencyKey = Annotated[
    str,
    StringConstraints(
        min_length=IDEMPOTENCY_KEY_MIN_LENGTH,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[A-Za-z0-9_.:-]+$",
    ),
    Field(
        description=(
            "Key of a side effect, 16-64 characters of [A-Za-z0-9_.:-]; "
            "a second commit with the same key is refused."
        )
    ),
]
"""The article's ``idempotency_key``: 16 to 64 characters, no spaces."""


class IdFactory:
    """Makes run, step and artifact ids from a seeded random source.

    Args:
        rng: The random source. Pass ``random.Random(seed)`` for reproducible ids; the default
            is seeded from the operating system.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()

    @classmethod
    def seeded(cls, seed: int) -> IdFactory:
        """A factory whose ids are the same on every run with the same seed."""
        return cls(random.Random(seed))

    def _token(self) -> str:
        return f"{self._rng.getrandbits(96):024x}"

    def run_id(self) -> RunId:
        """A new run id, ``run_`` and 24 hex digits."""
        return RunId(f"run_{self._token()}")

    def step_id(self) -> StepId:
        """A new step id, ``step_`` and 24 hex digits."""
        return StepId(f"step_{self._token()}")

    def artifact_id(self) -> ArtifactId:
        """A new artifact id, ``art_`` and 24 hex digits."""
        return ArtifactId(f"art_{self._token()}")


def derive_idempotency_key(run_id: str, position: int, tool: str, arguments: JsonValue) -> str:
    """The idempotency key of the side effect at ``position`` in ``run_id``.

    The same run, position, tool and arguments always give the same 32-character key, whatever
    the order of keys in ``arguments``; so a retried or resumed step finds its earlier commit.

    Args:
        run_id: The run the side effect belongs to.
        position: The step's position in the run (0-based), which tells two identical calls
            that the plan really meant twice apart.
        tool: The tool's name.
        arguments: The validated arguments, JSON-compatible.

    Returns:
        ``idk_`` followed by 28 hex digits of a SHA-256 digest.
    """
    canonical = json.dumps(
        [run_id, position, tool, arguments], sort_keys=True, separators=(",", ":")
    )
    return "idk_" + hashlib.sha256(canonical.encode()).hexdigest()[:28]
