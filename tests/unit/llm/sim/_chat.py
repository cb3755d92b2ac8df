"""Building chat requests for the simulator, and reading its answers, in tests."""

from __future__ import annotations

import json
from typing import Any

from agentlab.llm.sim import ErrorRates, SimulatorPolicy, load_profiles
from agentlab.tools import builtin_tools

PROFILES = load_profiles()
EXACT = PROFILES["sim-large"].model_copy(
    update={
        "name": "sim-exact",
        "errors": ErrorRates(
            wrong_tool=0,
            bad_arguments=0,
            obey_injection=0,
            claim_without_evidence=0,
            wrong_value=0,
            verifier_miss=0,
            refuse_harmful=1,
        ),
    }
)
"""A profile that never slips: tests of how the simulator reads use it."""
POLICY = SimulatorPolicy({**PROFILES, "sim-exact": EXACT})
TOOLS = [spec.openai_tool() for spec in builtin_tools()]
SYSTEM = {"role": "system", "content": "You are an internal help-desk agent."}


def tools_named(*names: str) -> list[dict[str, Any]]:
    """The built-in tools of these names, in OpenAI format."""
    return [t for t in TOOLS if t["function"]["name"] in names]


def ask(
    task: str,
    *,
    model: str = "sim-exact",
    tools: list[dict[str, Any]] | None = None,
    history: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The simulator's ``chat.completion`` for a task (and any history after it)."""
    request = {
        "model": model,
        "messages": [SYSTEM, {"role": "user", "content": task}, *(history or [])],
        "tools": TOOLS if tools is None else tools,
        **extra,
    }
    return POLICY.respond(request).body


def message(body: dict[str, Any]) -> dict[str, Any]:
    """The answer's message."""
    return body["choices"][0]["message"]


def calls(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """The tool calls of an answer: (name, parsed arguments or the raw text)."""
    found = []
    for call in message(body).get("tool_calls") or []:
        text = call["function"]["arguments"]
        try:
            arguments: Any = json.loads(text)
        except ValueError:
            arguments = text
        found.append((call["function"]["name"], arguments))
    return found


def result(body: dict[str, Any], outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """History to append: the answer's assistant message and one tool message per call."""
    msg = message(body)
    assistant = {"role": "assistant", "content": msg["content"], "tool_calls": msg["tool_calls"]}
    tool_messages = [
        {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": json.dumps({"tool": call["function"]["name"], **outcome}),
        }
        for call in msg["tool_calls"]
    ]
    return [assistant, *tool_messages]


def outcome(status: str, data: Any = None, message_text: str = "done") -> dict[str, Any]:
    """A tool result as ``ToolOutcome.for_model()`` writes it (without the tool name)."""
    return {"status": status, "message": message_text, "untrusted_data": data}
