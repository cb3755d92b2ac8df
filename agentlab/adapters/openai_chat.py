"""Chat models behind any OpenAI-compatible ``/v1/chat/completions`` endpoint.

OpenAI itself, Azure OpenAI, vLLM, Ollama, LiteLLM and agentlab's own simulator all speak
this wire format, so one class serves them all: only ``base_url`` and the key change. The key
comes from an environment variable (``OPENAI_API_KEY`` unless told otherwise), never from a
file or an argument, so it cannot end up in a notebook, a suite or a cassette.

The SDK's own retries are off: this class retries itself, so that every wait for a 429 goes
through the shared :class:`~agentlab.llm.LLMBudget` (which pauses every run using it) and is
reported, instead of each request sleeping on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx
import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentlab.adapters._api_keys import api_key_from_env
from agentlab.core.errors import ConfigError, ModelError, ModelRateLimited
from agentlab.llm.budget import RateBudget
from agentlab.llm.prices import PriceTable
from agentlab.llm.protocol import ChatRequest, ChatResponse, ToolCall, Usage

logger = logging.getLogger(__name__)

SIMULATOR_FINGERPRINT = "agentlab-simulator"
"""The prefix of the simulator's ``system_fingerprint``; an answer carrying it is simulated."""
MAX_RETRY_AFTER_S = 60.0
"""The longest single ``retry-after`` honoured; a longer one is cut to this."""
_RETRYABLE = frozenset({408, 409})  # and every 5xx; 429 has its own path through the budget
_MAX_BACKOFF_S = 30.0


class _Wire(BaseModel):
    # Endpoints add fields of their own (service_tier, annotations, logprobs ...): ignore them.
    model_config = ConfigDict(extra="ignore")


class _WireFunction(_Wire):
    name: str
    arguments: str


class _WireToolCall(_Wire):
    id: str
    type: str = "function"
    function: _WireFunction


class _WireMessage(_Wire):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_WireToolCall] | None = None


class _WireChoice(_Wire):
    message: _WireMessage
    finish_reason: str | None = None


class _PromptDetails(_Wire):
    cached_tokens: int | None = Field(default=None, ge=0)


class _CompletionDetails(_Wire):
    reasoning_tokens: int | None = Field(default=None, ge=0)


class _WireUsage(_Wire):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _WireCompletion(_Wire):
    id: str
    object: str = "chat.completion"
    model: str | None = None
    choices: list[_WireChoice] = Field(min_length=1)
    usage: _WireUsage
    system_fingerprint: str | None = None


class OpenAIChatModel:
    """A ChatModel over an OpenAI-compatible chat-completions endpoint.

    Args:
        model: The model name the endpoint knows, e.g. ``gpt-4.1-mini`` or ``sim-large``;
            it must have a price in ``prices``.
        base_url: The endpoint, e.g. ``https://api.openai.com/v1`` or
            ``http://127.0.0.1:8000/v1``.
        api_key_env: The environment variable that holds the key, read once here; None for
            an endpoint that needs no key (the simulator, a local server).
        http_client: An httpx client to send requests with: one with an ASGI transport for
            an in-process server, or a configured real one. It stays the caller's to close.
        prices: The price table; the embedded one by default.
        budget: The LLM budget to wait on before each request, shared with other runs (an
            ``LLMBudget``, or a ``RedisLLMBudget`` shared by a cluster); None sends without
            waiting (429s are still retried after their retry-after).
        seed: The seed sent when a request sets none; None sends none.
        max_retries: Retries after a 429, a 5xx, a timeout or a dropped connection.
        timeout_s: Per-attempt timeout.
        backoff_s: The first wait before retrying a 5xx or a failed connection; it doubles
            with every retry (up to 30 s). A 429 waits for its ``retry-after`` instead.
        clock: Monotonic seconds, for latency; ``time.monotonic`` by default.
        sleep: An awaitable sleep, for backoff; ``asyncio.sleep`` by default.

    Raises:
        ConfigError: the key's variable is unset or empty, or the model has no price.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        http_client: httpx.AsyncClient | None = None,
        prices: PriceTable | None = None,
        budget: RateBudget | None = None,
        seed: int | None = None,
        max_retries: int = 5,
        timeout_s: float = 60.0,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, not {max_retries}")
        self.prices = prices if prices is not None else PriceTable.load()
        self.prices.price_of(model)  # an unpriced model fails here, not after the first call
        api_key = api_key_from_env(api_key_env, what="chat model")
        self.model = model
        self.base_url = base_url
        self.budget = budget
        self.seed = seed
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self._where = _display_url(base_url)
        self._clock = clock
        self._sleep = sleep
        self._owns_client = http_client is None
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,  # we retry, so that waits go through the budget
            http_client=http_client,
        )

    @property
    def name(self) -> str:
        """The model's name as configured."""
        return self.model

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, if this model created it (a passed one is the caller's)."""
        if self._owns_client:
            await self._client.close()

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        """Send one request, retrying within the budget, and return the priced answer.

        Raises:
            ModelError: a 5xx, timeout or dropped connection outlasted the retries, the
                endpoint refused the request, or its answer is not a chat completion.
            ModelRateLimited: 429s went on past ``max_retries``.
            ConfigError: the endpoint refused the key (401 or 403), or the request is
                larger than the budget's ``tokens_per_minute``.
        """
        estimate = request.estimated_prompt_tokens() + (request.max_tokens or 0)
        params = self._params(request)
        started = self._clock()
        waited_s = 0.0
        attempt = 0
        while True:
            if self.budget is not None:
                waited_s += await self.budget.acquire(estimate)
            try:
                # The client's own POST rather than chat.completions.create(): create()
                # walks every message and tool schema through the SDK's TypedDict
                # transform (3 ms a call on an agent's request, half a replayed run's
                # time), which does nothing to the wire-format dicts built here. Auth,
                # headers, timeouts and errors are the client's as before.
                raw = await self._client.post(
                    "/chat/completions",
                    body=params,
                    cast_to=httpx.Response,
                    options={"timeout": self.timeout_s},
                )
            except openai.APIStatusError as exc:
                self._refund(estimate)
                waited_s += await self._after_status(exc, attempt)
            except asyncio.CancelledError:
                self._refund(estimate)  # the run was cancelled: the tokens go back
                raise
            except openai.APIConnectionError as exc:  # timeouts included
                self._refund(estimate)
                what = "timed out" if isinstance(exc, openai.APITimeoutError) else "unreachable"
                await self._retry_or_raise(attempt, what, None)
            else:
                completion = self._parse(raw.content, raw.headers.get("content-type", ""))
                usage = _usage(completion.usage)
                if self.budget is not None:
                    self.budget.settle(estimate, usage.total_tokens)
                return self._response(completion, usage, started, waited_s)
            attempt += 1

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": list(request.messages),
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        optional = {
            "tools": list(request.tools) or None,
            "tool_choice": request.tool_choice,
            "response_format": request.response_format,
            "seed": request.seed if request.seed is not None else self.seed,
            "max_tokens": request.max_tokens,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        return params

    def _refund(self, estimate: int) -> None:
        """A refused or failed request used no tokens: give the estimate back."""
        if self.budget is not None:
            self.budget.settle(estimate, 0)

    async def _after_status(self, exc: openai.APIStatusError, attempt: int) -> float:
        """Handle an error status: wait and return the budget wait, or raise."""
        status = exc.status_code
        retry_after_s = _retry_after_s(exc.response.headers)
        if status == 429:
            if attempt >= self.max_retries:
                raise ModelRateLimited(
                    f"{self._where} kept answering 429 (too many requests) for model "
                    f"{self.model} after {self.max_retries} retries",
                    hint="lower rateLimits.llm in the policy to the endpoint's real limits, "
                    "or raise max_retries; see docs/errors/MODEL_RATE_LIMITED.md",
                ) from None
            delay = retry_after_s if retry_after_s is not None else self._backoff(attempt)
            if self.budget is not None:
                self.budget.backoff(delay)  # pauses every run sharing the budget
                return 0.0  # the next acquire() waits, and reports it
            logger.info(
                "%s answered 429 for %s; waiting %.3f s (retry %d of %d)",
                self._where,
                self.model,
                delay,
                attempt + 1,
                self.max_retries,
            )
            await self._sleep(delay)
            return delay
        if status in (401, 403):
            raise ConfigError(
                f"{self._where} refused the API key for model {self.model} ({status})",
                hint="check the key in the environment variable, and its access to the model",
            ) from None
        if status in _RETRYABLE or status >= 500:
            await self._retry_or_raise(attempt, f"answered {status}", retry_after_s)
            return 0.0
        raise ModelError(
            f"{self._where} refused the request for model {self.model} ({status}): {_reason(exc)}",
            hint="check the model name, the tools' schemas and the request's size",
        ) from None

    async def _retry_or_raise(self, attempt: int, what: str, retry_after_s: float | None) -> None:
        if attempt >= self.max_retries:
            raise ModelError(
                f"{self._where} {what} for model {self.model}, after {self.max_retries} retries",
                hint="check that the endpoint is up and that base_url is right (it usually "
                "ends in /v1); see docs/errors/MODEL.md",
            ) from None
        delay = retry_after_s if retry_after_s is not None else self._backoff(attempt)
        logger.info(
            "%s %s for %s; retry %d of %d in %.3f s",
            self._where,
            what,
            self.model,
            attempt + 1,
            self.max_retries,
            delay,
        )
        await self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        return min(_MAX_BACKOFF_S, self.backoff_s * 2**attempt)

    def _parse(self, body: bytes, content_type: str) -> _WireCompletion:
        """Read a chat-completions answer, or raise ModelError saying what is wrong."""
        try:
            data = json.loads(body)
        except ValueError:
            raise self._unreadable(
                f"the body is not JSON (content-type {content_type or 'missing'!r})"
            ) from None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            message = str(data["error"].get("message", ""))[:200]
            raise self._unreadable(f"an error instead of an answer: {message}")
        try:
            completion = _WireCompletion.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(body)"
            raise self._unreadable(f"field {where!r}: {first['msg']}") from None
        if completion.object != "chat.completion":
            raise self._unreadable(f"its object is {completion.object!r}")
        return completion

    def _unreadable(self, detail: str) -> ModelError:
        return ModelError(
            f"{self._where} answered model {self.model} with something that is not a chat "
            f"completion: {detail}",
            hint="check that base_url points at an OpenAI-compatible endpoint (it usually "
            "ends in /v1)",
        )

    def _response(
        self, completion: _WireCompletion, usage: Usage, started: float, waited_s: float
    ) -> ChatResponse:
        choice = completion.choices[0]
        message = choice.message
        answered_by = completion.model or self.model
        # An endpoint may answer with a name the table does not know (a deployment's name,
        # a snapshot): then the model that was asked for is the price.
        priced_as = answered_by if self.prices.resolve(answered_by) else self.model
        elapsed_s = max(0.0, self._clock() - started)
        return ChatResponse(
            response_id=completion.id,
            model=answered_by,
            content=message.content,
            tool_calls=tuple(
                ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
                for call in message.tool_calls or ()
            ),
            refusal=message.refusal,
            finish_reason=choice.finish_reason or "unknown",
            usage=usage,
            cost_usd=self.prices.cost_usd(priced_as, usage),
            latency_ms=max(0.0, elapsed_s - waited_s) * 1000,
            waited_ms=waited_s * 1000,
            is_simulated=(completion.system_fingerprint or "").startswith(SIMULATOR_FINGERPRINT),
        )


def _usage(wire: _WireUsage) -> Usage:
    cached = (wire.prompt_tokens_details and wire.prompt_tokens_details.cached_tokens) or 0
    reasoning = (
        wire.completion_tokens_details and wire.completion_tokens_details.reasoning_tokens
    ) or 0
    return Usage(
        prompt_tokens=wire.prompt_tokens,
        completion_tokens=wire.completion_tokens,
        cached_tokens=min(cached, wire.prompt_tokens),
        reasoning_tokens=min(reasoning, wire.completion_tokens),
    )


def _retry_after_s(headers: httpx.Headers | Any) -> float | None:
    """The wait an answer asks for, in seconds, capped at a minute.

    ``retry-after-ms`` first, then ``retry-after`` in seconds or as an HTTP date; None when
    the answer asks for no wait, or for nonsense.
    """
    value: float | None = None
    millis = headers.get("retry-after-ms")
    seconds = headers.get("retry-after")
    if millis is not None:
        value = _number(millis, 1000)
    if value is None and seconds is not None:
        value = _number(seconds, 1)
        if value is None:
            value = _seconds_until(seconds, headers.get("date"))
    if value is None or value < 0:
        return None
    return min(value, MAX_RETRY_AFTER_S)


def _number(text: str, divisor: float) -> float | None:
    try:
        value = float(text) / divisor
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _seconds_until(http_date: str, server_date: str | None) -> float | None:
    """Seconds from the answer's own ``Date`` (else now) to an HTTP date."""
    try:
        until = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    now = datetime.now(UTC)
    if server_date:
        with contextlib.suppress(TypeError, ValueError):
            now = parsedate_to_datetime(server_date)
    if until.tzinfo is None or now.tzinfo is None:
        return None
    return (until - now).total_seconds()


def _display_url(base_url: str) -> str:
    """The endpoint as it may be shown: no user, password or query (they can hold keys)."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        return "the model endpoint"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}".rstrip("/")


def _reason(exc: openai.APIStatusError) -> str:
    """The endpoint's error message (never the request, which holds the conversation)."""
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(message, str):
            return message[:200]
    return type(exc).__name__
