"""A ChatModel that answers from a script: for graph mechanics the simulator cannot force.

It is a real implementation of the ``ChatModel`` port -- like the runtime's
``ScriptedReviewer`` -- and it keeps every request it received, so tests can check what a
model was shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agentlab.llm import ChatRequest, ChatResponse, ToolCall, Usage
from agentlab.security.spotlight import unwrap

Turn = str | list[tuple[str, Any]] | Exception
"""An answer (text), tool calls (name and arguments: a dict, or raw text), or a failure."""


class ScriptedModel:
    """Answers acting requests from ``turns``, plan requests from ``plans``, verdicts pass."""

    def __init__(
        self,
        turns: Iterable[Turn],
        *,
        plans: Iterable[dict[str, Any]] = (),
        verdicts: Iterable[dict[str, Any]] = (),
        reuse_call_ids: bool = False,
    ) -> None:
        self._turns = iter(turns)
        self._plans = iter(plans)
        self._verdicts = iter(verdicts)
        self.requests: list[ChatRequest] = []
        self._calls = 0
        self._reuse_call_ids = reuse_call_ids
        """Like some OpenAI-compatible servers: call ids start again at every turn."""

    @property
    def name(self) -> str:
        return "scripted"

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        wanted = (request.response_format or {}).get("json_schema", {}).get("name")
        if wanted == "plan":
            return self._answer(json.dumps(next(self._plans)))
        if wanted == "verdict":
            return self._answer(json.dumps(next(self._verdicts, {"passed": True, "findings": []})))
        turn = next(self._turns)
        if isinstance(turn, Exception):
            raise turn
        if isinstance(turn, str):
            return self._answer(turn)
        calls = []
        if self._reuse_call_ids:
            self._calls = 0
        for tool, arguments in turn:
            self._calls += 1
            text = arguments if isinstance(arguments, str) else json.dumps(arguments)
            calls.append(ToolCall(id=f"call_{self._calls}", name=tool, arguments=text))
        return self._response(None, tuple(calls))

    def _answer(self, content: str) -> ChatResponse:
        return self._response(content, ())

    def _response(self, content: str | None, calls: tuple[ToolCall, ...]) -> ChatResponse:
        return ChatResponse(
            response_id=f"resp_{len(self.requests)}",
            model="scripted",
            content=content,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "stop",
            usage=Usage(prompt_tokens=100, completion_tokens=10),
            cost_usd=0.001,
            latency_ms=1.0,
        )

    def tool_messages(self) -> list[dict[str, Any]]:
        """Every tool result the model was shown, parsed, in the order first shown."""
        seen: dict[str, dict[str, Any]] = {}
        for request in self.requests:
            for message in request.messages:
                if message.get("role") == "tool":
                    content, _ = unwrap(message["content"])  # spotlighted as untrusted data
                    seen.setdefault(message["tool_call_id"], json.loads(content))
        return list(seen.values())
