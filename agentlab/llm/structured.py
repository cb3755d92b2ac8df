"""The structured answers agents ask of a model: a plan and a verdict.

Each is a pydantic model whose JSON Schema goes to the model as a strict
``response_format``; the simulator recognises the schema by its ``name`` and answers in it,
as a real model does. Field docstrings are the instructions the model reads.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class PlannedStep(_Strict):
    """One step of a plan."""

    tool: str
    """The name of the tool this step uses; one of the tools offered."""
    purpose: str
    """What the step is for, in a few words."""


class Plan(_Strict):
    """How the task will be done, step by step, before anything runs."""

    steps: list[PlannedStep]
    """The tool calls, in order; empty when the task needs no tool."""
    clarification: str | None
    """A question for the requester when the task is too ambiguous to plan; else null."""


class Verdict(_Strict):
    """A check of the run's result against the evidence in the tool results."""

    passed: bool
    """True only when every claim of the answer is backed by a tool result."""
    findings: list[str]
    """What is wrong or unsupported, one finding per item; empty when passed."""


PLAN_FORMAT = "plan"
"""The ``json_schema.name`` of a plan request."""
VERDICT_FORMAT = "verdict"
"""The ``json_schema.name`` of a verdict request."""


@cache
def response_format(model: type[BaseModel], name: str) -> dict[str, Any]:
    """An OpenAI strict ``response_format`` for ``model``, named ``name``.

    Built once per model and name (callers must not change it): every plan and verdict
    request sends one.
    """
    schema = model.model_json_schema()
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "strict": True, "schema": _strict(schema)},
    }


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's strict mode wants every object closed and every property required."""
    if schema.get("type") == "object" and "properties" in schema:
        schema["additionalProperties"] = False
        schema["required"] = list(schema["properties"])
    for value in schema.values():
        if isinstance(value, dict):
            _strict(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _strict(item)
    return schema
