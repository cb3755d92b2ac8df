"""The OpenAI chat-completions wire format: requests checked, answers and chunks built.

Only the shape is here; what to answer is the policy's business. Requests are checked as
OpenAI checks them, and a bad one is answered with a 400 in OpenAI's error format, naming
the field (``{"error": {"message", "type", "param", "code"}}``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SYSTEM_FINGERPRINT_PREFIX = "agentlab-simulator"
"""Every answer's ``system_fingerprint`` starts with this: the model layer reads it."""


class RequestError(Exception):
    """A request the endpoint refuses; ``body()`` is the OpenAI-format error."""

    def __init__(self, message: str, *, param: str | None, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status

    def body(self) -> dict[str, Any]:
        """The error as OpenAI sends it."""
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Function(_Open):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _Tool(_Open):
    type: Literal["function"]
    function: _Function


class _CalledFunction(_Open):
    name: str
    arguments: str


class _ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: _CalledFunction


class _Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Any] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None


class _JsonSchema(_Open):
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class _ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JsonSchema | None = None


class _StreamOptions(_Open):
    include_usage: bool | None = None


class ChatCompletionRequest(_Open):
    """The parts of a chat-completions request the simulator reads (others are accepted)."""

    model: str = Field(min_length=1)
    messages: list[_Message] = Field(min_length=1)
    tools: list[_Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | dict[str, Any] | None = None
    response_format: _ResponseFormat | None = None
    seed: int | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool | None = None
    stream_options: _StreamOptions | None = None


def parse_request(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The request as a plain dict, checked.

    Raises:
        RequestError: the body is not JSON, or a field is missing or wrong (``param`` names it).
    """
    if isinstance(raw, (bytes, str)):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise RequestError(
                "the request body is not valid JSON", param=None, code="invalid_json"
            ) from None
    if not isinstance(raw, dict):
        raise RequestError(
            "the request body must be a JSON object", param=None, code="invalid_type"
        )
    try:
        ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(
            str(p) for p in error["loc"] if not str(p).startswith(("function-", "literal["))
        )
        param = param.replace(".schema_", ".schema")
        raise RequestError(
            f"invalid request: {param or 'body'}: {error['msg']}",
            param=param or None,
            code="missing_required_parameter" if error["type"] == "missing" else "invalid_value",
        ) from None
    for index, message in enumerate(raw["messages"]):
        if message.get("role") == "tool" and not message.get("tool_call_id"):
            raise RequestError(
                f"invalid request: messages.{index}.tool_call_id: a tool message needs the id "
                "of the call it answers",
                param=f"messages.{index}.tool_call_id",
                code="missing_required_parameter",
            )
    return raw


def schema_name(request: dict[str, Any]) -> str | None:
    """``response_format.json_schema.name``, or None."""
    response_format = request.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return None
    return (response_format.get("json_schema") or {}).get("name")


def completion(
    *,
    response_id: str,
    created: int,
    model: str,
    fingerprint: str,
    message: dict[str, Any],
    finish_reason: str,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": usage,
        "service_tier": "default",
    }


def chunks(body: dict[str, Any], *, include_usage: bool, piece_chars: int = 24) -> Iterator[str]:
    """A completion as server-sent events of ``chat.completion.chunk``, ending ``[DONE]``."""
    choice = body["choices"][0]
    message = choice["message"]
    head = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": body["created"],
        "model": body["model"],
        "system_fingerprint": body["system_fingerprint"],
        "service_tier": body.get("service_tier", "default"),
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> str:
        chunk = {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            chunk["usage"] = None
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": "", "refusal": None})
    for key in ("content", "refusal"):
        text = message.get(key)
        for start in range(0, len(text or ""), piece_chars):
            yield event({key: text[start : start + piece_chars]})
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        yield event(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": function["name"], "arguments": ""},
                    }
                ]
            }
        )
        arguments = function["arguments"]
        for start in range(0, len(arguments), piece_chars):
            piece = arguments[start : start + piece_chars]
            yield event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield event({}, choice["finish_reason"])
    if include_usage:
        last = {**head, "choices": [], "usage": body["usage"]}
        yield f"data: {json.dumps(last, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
