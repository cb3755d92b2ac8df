"""ToolSpec: one pydantic model gives a tool's schema, its validation and its description.

The JSON Schema a model is shown is generated from the same class that validates the model's
arguments, so the two cannot drift. Validation is strict (``"5"`` is not ``5``, no extra
fields) and runs on the JSON the model sent, exactly as it arrived on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from agentlab.core.records import SideEffect
from agentlab.tools.context import ToolContext, ToolOutput
from agentlab.tools.errors import InvalidArguments

ArgsT = TypeVar("ArgsT", bound=BaseModel)


class ToolArguments(BaseModel):
    """Base of every tool's arguments: strict, closed, documented field by field.

    Strict because a model fills these: ``"5"`` is not ``5`` and ``"false"`` is not ``False``.
    Every field is required (optional ones are nullable) so the schema suits OpenAI's strict
    mode, where the model must send every property.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True
    )


class WriteArguments(ToolArguments):
    """Base of a write tool's arguments: the two fields the article requires of every write."""

    dry_run: bool
    """True to preview the change without making it. The executor decides: it always
    previews first, and commits only when policy and approval allow."""
    idempotency_key: str = Field(min_length=16, max_length=64)
    """Any 16-64 characters. The executor replaces it with a key derived from the run and the
    step, so that a retried or resumed call can never make a second change."""


EXECUTOR_FIELDS = frozenset({"dry_run", "idempotency_key"})
"""Fields of a write tool's arguments that the executor sets, whatever the model sent:
``dry_run`` follows the autonomy phase and the approval flow, ``idempotency_key`` is derived
from the run and the step so that a retry or a resume lands on the same key."""


@dataclass(frozen=True)
class ToolSpec(Generic[ArgsT]):
    """A governed tool: what the model sees, what the executor enforces, what runs.

    Build one with the :func:`agentlab.tools.tool` decorator rather than by hand.
    """

    name: str
    """The function name the model calls, e.g. ``create_purchase_order``."""
    description: str
    """What the tool does, for the model; taken from the arguments model's docstring."""
    arguments: type[ArgsT]
    """The pydantic model of the arguments: the schema and the validator."""
    side_effect: SideEffect
    """``read`` or ``write``: writes go through dry-run, approval and idempotency."""
    scope: str
    """The scope an actor needs to be offered the tool, e.g. ``erp:write``."""
    system: str
    """The system the tool reaches; the key of its caps in the policy's ``rateLimits.tools``
    (``erp_api``, ``email_send``, ...). Tools of one system share its concurrency cap."""
    run: Callable[[ArgsT, ToolContext], Awaitable[ToolOutput]]
    """The implementation; it reaches its system through ``ctx.http`` only."""
    supports_dry_run: bool = True
    """Whether the system can preview a write; a write without it cannot run in phase 2."""
    masked_fields: frozenset[str] = field(default_factory=frozenset)
    """Argument fields that may hold personal data: the audit log keeps only their length."""
    resources: frozenset[str] = field(default_factory=frozenset)
    """Executor resources the tool needs besides HTTP (``browser``, ``sandbox``): a tool is
    offered to a model only when the executor has them."""
    targets: Callable[[ArgsT], tuple[str, ...]] = lambda _args: ()
    """The resources a call touches, as URIs (``mailto:a@b.com``, ``erp:supplier/SUP-1``);
    policy checks allowlists against them and the audit log records them."""

    @property
    def is_write(self) -> bool:
        """True when the tool changes its system."""
        return self.side_effect is SideEffect.WRITE

    def json_schema(self) -> dict[str, Any]:
        """The strict JSON Schema of the arguments, as a model is shown it.

        Built once per arguments model (pydantic's schema generation cost 5 ms a run when
        every run rebuilt its tools); callers must not change it.
        """
        return _arguments_schema(self.arguments)

    def openai_tool(self) -> dict[str, Any]:
        """The tool in the OpenAI ``tools`` format, with ``strict`` schema adherence on."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.json_schema(),
                "strict": True,
            },
        }

    def validate(self, arguments: Mapping[str, JsonValue] | str) -> ArgsT:
        """Validate a call's arguments as the model sent them (a dict, or its JSON text).

        Raises:
            InvalidArguments: naming every wrong field and the rule it breaks; its message
                goes back to the model, and nothing reaches the system.
        """
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        try:
            return self.arguments.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidArguments(self.name, exc) from None

    def audit_view(self, arguments: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
        """The arguments as the audit log keeps them: masked fields replaced by their size."""
        return {
            name: (_masked(value) if name in self.masked_fields else value)
            for name, value in arguments.items()
        }


def _masked(value: JsonValue) -> str:
    return f"[masked: {len(json.dumps(value))} chars]"


@cache
def _arguments_schema(arguments: type[BaseModel]) -> dict[str, Any]:
    schema = _strip_titles(arguments.model_json_schema())
    if schema.get("type") == "object":
        # a tool without arguments: strict mode still wants the (empty) list
        schema.setdefault("required", [])
    return schema


def _strip_titles(node: Any) -> Any:
    """Drop pydantic's generated ``title`` keys: noise in the prompt, not constraints."""
    if isinstance(node, dict):
        return {
            key: _strip_titles(value)
            for key, value in node.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [_strip_titles(item) for item in node]
    return node
