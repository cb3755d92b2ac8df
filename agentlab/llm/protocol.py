"""The ChatModel port: one request in the OpenAI chat format, one typed answer out.

Agents speak OpenAI's chat-completions wire format because every serious endpoint does
(OpenAI, Azure, vLLM, Ollama, LiteLLM ...) and because the offline simulator answers in it
too. Messages stay plain dicts in that format, so what the graph keeps in its state is what
goes over the wire and into a cassette, byte for byte.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Message = dict[str, Any]
"""One chat message in OpenAI format: ``{"role": "user", "content": "..."}``, an assistant
message with ``tool_calls``, or ``{"role": "tool", "tool_call_id": ..., "content": ...}``."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ToolCall(_Frozen):
    """A tool call as the model wrote it: the arguments stay the raw JSON text it sent."""

    id: str
    name: str
    arguments: str
    """The arguments exactly as the model wrote them; they may not even be JSON."""

    def parsed_arguments(self) -> dict[str, JsonValue] | None:
        """The arguments as a JSON object, or None when the model wrote something else."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class Usage(_Frozen):
    """Tokens one answer took, as the endpoint counted them."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    """Prompt tokens served from the endpoint's cache (``prompt_tokens_details``)."""
    reasoning_tokens: int = Field(default=0, ge=0)
    """Completion tokens spent on reasoning (``completion_tokens_details``)."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens: what a tokens-per-minute budget counts."""
        return self.prompt_tokens + self.completion_tokens


class ChatRequest(_Frozen):
    """What an agent asks of a model.

    Defaults make answers as repeatable as the endpoint allows: temperature 0, top_p 1, and
    a seed where the endpoint takes one.
    """

    messages: tuple[Message, ...] = Field(min_length=1)
    tools: tuple[dict[str, Any], ...] = ()
    """Tools in OpenAI format, each with ``strict: true`` (``ToolSpec.openai_tool()``)."""
    tool_choice: str | None = None
    """``auto``, ``none`` or ``required``; None leaves it to the endpoint (``auto``)."""
    response_format: dict[str, Any] | None = None
    """A ``{"type": "json_schema", ...}`` format for structured answers (plans, verdicts)."""
    temperature: float = Field(default=0.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = None
    max_tokens: int | None = Field(default=None, gt=0)

    def estimated_prompt_tokens(self) -> int:
        """A rough token count (4 characters a token) for budgeting before the call."""
        text = json.dumps([list(self.messages), list(self.tools)], ensure_ascii=False)
        return len(text) // 4 + 1


class ChatResponse(_Frozen):
    """A model's answer, with what it cost and how long it took."""

    response_id: str
    model: str
    """The model as the endpoint named it in its answer."""
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    """Set when the model refused (OpenAI's ``message.refusal``)."""
    finish_reason: str
    usage: Usage
    cost_usd: float = Field(ge=0)
    latency_ms: float = Field(ge=0)
    """Wall time of the request, retries included, budget waits excluded."""
    waited_ms: float = Field(default=0, ge=0)
    """Time spent waiting for the LLM budget before the request could be sent."""
    is_simulated: bool = False
    """True when agentlab's offline simulator answered (its ``system_fingerprint`` says so)."""

    def as_message(self) -> Message:
        """The answer as the assistant message to append to the conversation."""
        message: Message = {"role": "assistant", "content": self.content}
        if self.refusal is not None:
            message["refusal"] = self.refusal
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message


@runtime_checkable
class ChatModel(Protocol):
    """Answers chat requests.

    ``OpenAIChatModel`` (in adapters) is the one real backend: it talks to any
    OpenAI-compatible endpoint, the offline simulator included.
    """

    @property
    def name(self) -> str:
        """The model's name as configured, e.g. ``sim-large`` or ``gpt-4.1-mini``."""
        ...

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        """Send one request and return the answer.

        Raises:
            ModelError: the endpoint failed, or its answer cannot be read.
            ModelRateLimited: 429s went on past the retries the budget allows.
        """
        ...
