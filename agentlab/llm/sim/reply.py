"""What the policy decides, before it is dressed as an OpenAI ``chat.completion``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlannedCall:
    """A tool call the simulator makes: the tool and the arguments' JSON text as sent."""

    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """One answer: text, tool calls, or a refusal."""

    content: str | None = None
    tool_calls: tuple[PlannedCall, ...] = ()
    refusal: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)
    """Which seeded mistakes shaped the answer (``wrong_tool``, ``obey_injection`` ...); kept
    out of the wire answer, for tests and debugging."""
