"""How a tool's HTTP answers become results, refusals for the model, or retryable failures."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agentlab.core.errors import ToolRejected
from agentlab.tools import ToolContext, ToolUnavailable


def _ask(handler: httpx.MockTransport, *, key: str | None = None) -> object:
    async def go() -> object:
        async with httpx.AsyncClient(transport=handler, base_url="http://system") as http:
            ctx = ToolContext(
                http=http, actor="alice", data_classes=("public", "internal"), idempotency_key=key
            )
            return await ctx.request("POST", "/things", json={"a": 1})

    return asyncio.run(go())


def test_a_json_answer_is_the_result_and_the_request_carries_key_and_classes() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "T-1"})

    assert _ask(httpx.MockTransport(answer), key="k" * 16) == {"id": "T-1"}
    assert seen[0].headers["Idempotency-Key"] == "k" * 16
    assert seen[0].headers["X-Data-Classes"] == "public,internal"


def test_a_refusal_goes_to_the_model_with_the_systems_detail() -> None:
    transport = httpx.MockTransport(
        lambda _r: httpx.Response(422, json={"detail": "qty: too many"})
    )
    with pytest.raises(ToolRejected, match="qty: too many"):
        _ask(transport)


def test_a_throttle_is_retryable_and_carries_retry_after() -> None:
    transport = httpx.MockTransport(
        lambda _r: httpx.Response(429, headers={"Retry-After": "3"}, json={})
    )
    with pytest.raises(ToolUnavailable) as caught:
        _ask(transport)
    assert (caught.value.error_code, caught.value.retry_after_s) == ("http_429", 3.0)


def test_a_dropped_connection_is_retryable() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ToolUnavailable) as caught:
        _ask(httpx.MockTransport(drop))
    assert caught.value.error_code == "transport_error"


def test_a_success_without_json_is_a_retryable_bad_response_not_a_crash() -> None:
    transport = httpx.MockTransport(lambda _r: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(ToolUnavailable) as caught:
        _ask(transport)
    assert caught.value.error_code == "bad_response"
