"""Model profiles of the simulator: error rates, token counting and latency, from YAML.

A profile is data, not code: ``profiles.yaml`` next to this module holds the built-in ones
(``sim-large`` and ``sim-small``), and :func:`load_profiles` reads any file of the same
shape, reporting a wrong field as ``file:line``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentlab.core.config import load_yaml_model

DEFAULT_PROFILES_PATH = Path(__file__).with_name("profiles.yaml")
"""The built-in profiles."""

PROFILE_NAME = r"^sim-[a-z0-9][a-z0-9.-]{0,40}$"
Rate = Annotated[float, Field(ge=0, le=1)]


class _Closed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ErrorRates(_Closed):
    """How often the profile makes each kind of mistake, as a probability per decision."""

    wrong_tool: Rate
    """A tool call goes to another tool than the one the task needs."""
    bad_arguments: Rate
    """A tool call's arguments are malformed JSON or break the schema (pattern, range)."""
    obey_injection: Rate
    """An instruction found inside a tool result or a retrieved document is followed."""
    obey_injection_spotlighted: Rate | None = None
    """As ``obey_injection``, when the result arrived fenced as untrusted data with the run's
    declared boundary (spotlighting); None: spotlighting makes no difference to the profile."""
    claim_without_evidence: Rate
    """The answer says an action is done when no tool result shows it (maybe with an
    invented id): when about to make the write the task asks for, and when a write waits for
    approval, failed or was rejected."""
    wrong_value: Rate = 0.0
    """A write's argument passes the schema but is not what the task asked: a quantity
    misread (16 -> 61, 16 -> 6, another number of the text), a similar id (the neighbouring
    ticket, another SKU a result listed), a recipient taken from a result. Drawn per write
    call; 0 when a profile file does not set it."""
    act_on_assumption: Rate = 0.0
    """A fact the request names but does not give (an asset tag) is not asked for: the
    write goes ahead without it. 0 when a profile file does not set it."""
    verifier_miss: Rate
    """A verdict passes an answer whose claims the evidence does not back."""
    refuse_harmful: Rate
    """A harmful request (exfiltration, credentials) is refused via ``message.refusal``."""


class TokenModel(_Closed):
    """How usage is counted: deterministic from the request and the answer."""

    chars_per_token: float = Field(default=4.0, gt=0)
    """Characters of JSON per token, for prompt and completion alike."""
    reasoning_tokens: tuple[int, int] = (0, 0)
    """Least and most reasoning tokens an answer spends (drawn per answer); ``[0, 0]`` for
    a profile without reasoning."""

    @field_validator("reasoning_tokens")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if low < 0 or high < low:
            raise ValueError("give [least, most] with 0 <= least <= most")
        return value


class LatencyModel(_Closed):
    """How long an answer is modelled to take: base + per token, with seeded jitter."""

    base_ms: float = Field(ge=0)
    """Time to the first token."""
    per_prompt_token_ms: float = Field(ge=0)
    """Time per prompt token (prefill)."""
    per_completion_token_ms: float = Field(ge=0)
    """Time per completion token, reasoning included (decoding)."""
    jitter: float = Field(default=0.0, ge=0, lt=1)
    """Relative spread: the latency is scaled by a factor drawn from [1 - jitter, 1 + jitter]."""

    def latency_ms(self, prompt_tokens: int, completion_tokens: int, rng: random.Random) -> float:
        """The modelled latency of one answer, in milliseconds, rounded to 0.1 ms."""
        nominal = (
            self.base_ms
            + self.per_prompt_token_ms * prompt_tokens
            + self.per_completion_token_ms * completion_tokens
        )
        factor = 1 + rng.uniform(-self.jitter, self.jitter)
        return round(nominal * factor, 1)


class _ProfileBody(_Closed):
    description: str = Field(min_length=1)
    """What the profile is like; it must say that it is a simulator."""
    errors: ErrorRates
    max_argument_retries: int = Field(default=2, ge=0, le=5)
    """How often the profile re-sends a call whose arguments were invalid before it gives up."""
    tokens: TokenModel = TokenModel()
    latency: LatencyModel

    @field_validator("description")
    @classmethod
    def _says_simulator(cls, value: str) -> str:
        if "simulator" not in value.lower():
            raise ValueError("the description must say that the profile is a simulator")
        return value


class SimProfile(_ProfileBody):
    """One simulated model: its name is the ``model`` a request asks for."""

    name: str = Field(pattern=PROFILE_NAME)
    """The model name, e.g. ``sim-large``; it always starts with ``sim-``."""


class ProfileFile(_Closed):
    """The shape of a profiles YAML file: ``profiles: {<name>: {...}}``."""

    profiles: dict[str, _ProfileBody] = Field(min_length=1)

    @field_validator("profiles")
    @classmethod
    def _simulator_names(cls, value: dict[str, _ProfileBody]) -> dict[str, _ProfileBody]:
        for name in value:
            if not re.fullmatch(PROFILE_NAME, name):
                raise ValueError(
                    f"profile name {name!r} must start with 'sim-' and use a-z, 0-9, '.', '-'"
                )
        return value

    def built(self) -> dict[str, SimProfile]:
        """The profiles by name."""
        return {
            name: SimProfile(name=name, **body.model_dump()) for name, body in self.profiles.items()
        }


def load_profiles(path: str | Path | None = None) -> dict[str, SimProfile]:
    """Read simulator profiles from YAML (the built-in ``profiles.yaml`` by default).

    Raises:
        ConfigError: naming ``file:line`` and the field for every problem found.
    """
    return load_yaml_model(Path(path) if path else DEFAULT_PROFILES_PATH, ProfileFile).built()
