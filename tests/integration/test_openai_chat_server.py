"""OpenAIChatModel against a real local HTTP server that rate-limits it: 429s are retried
within the LLM budget, over a real socket, and the waits are reported."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from agentlab.adapters import OpenAIChatModel
from agentlab.core.errors import ModelRateLimited
from agentlab.llm import ChatRequest, LLMBudget
from tests.integration._serving import serving

ANSWER: dict[str, Any] = {
    "id": "chatcmpl-BkZ9c3dE5fG7hI9jK1lM3nO5pQ7rS",
    "object": "chat.completion",
    "created": 1750331500,
    "model": "gpt-4.1-mini-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_Zx1Yw2Vu3Ts4Rq5Po6Nm7Lk8",
                        "type": "function",
                        "function": {"name": "find_supplier", "arguments": '{"query":"Acme"}'},
                    }
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 812,
        "completion_tokens": 19,
        "total_tokens": 831,
        "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_6f2eabb9a5",
}
RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for gpt-4.1-mini on requests per min (RPM): Limit 3, "
        "Used 3, Requested 1. Please try again in 20ms.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


class RateLimitedEndpoint:
    """A chat-completions endpoint that answers 429 the first ``limited`` times."""

    def __init__(self, limited: int) -> None:
        self.limited = limited
        self.calls = 0
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.complete)

    async def complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        assert body["model"] == "gpt-4.1-mini"
        self.calls += 1
        if self.calls <= self.limited:
            return JSONResponse(RATE_LIMITED, status_code=429, headers={"retry-after-ms": "20"})
        return JSONResponse(ANSWER)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test-key")


@pytest.mark.usefixtures("key")
def test_two_429s_are_retried_within_the_budget_and_the_waits_reported() -> None:
    endpoint = RateLimitedEndpoint(limited=2)
    messages: list[str] = []
    budget = LLMBudget(60, 100_000, on_wait=messages.append)

    async def go(base_url: str) -> Any:
        async with OpenAIChatModel("gpt-4.1-mini", base_url=base_url, budget=budget) as model:
            return await model.acomplete(ChatRequest(messages=({"role": "user", "content": "hi"},)))

    with serving(endpoint.app) as url:
        response = asyncio.run(go(f"{url}/v1"))

    assert endpoint.calls == 3
    assert budget.requests_granted == 3  # every attempt went through the budget
    assert len(messages) == 2
    assert all(m.startswith("LLM budget: waiting ") for m in messages)
    assert all("429 (it asked to retry after 20 ms)" in m for m in messages)
    assert response.waited_ms > 0
    assert response.waited_ms == pytest.approx(budget.total_waited_s * 1000)
    assert response.latency_ms > 0
    assert response.tool_calls[0].name == "find_supplier"
    assert response.usage.cached_tokens == 512
    assert response.cost_usd == pytest.approx((300 * 0.40 + 512 * 0.10 + 19 * 1.60) / 1e6)


@pytest.mark.usefixtures("key")
def test_429s_beyond_the_retries_are_model_rate_limited() -> None:
    endpoint = RateLimitedEndpoint(limited=10)
    budget = LLMBudget(60, 100_000)

    async def go(base_url: str) -> Any:
        async with OpenAIChatModel(
            "gpt-4.1-mini", base_url=base_url, budget=budget, max_retries=2
        ) as model:
            return await model.acomplete(ChatRequest(messages=({"role": "user", "content": "hi"},)))

    with serving(endpoint.app) as url, pytest.raises(ModelRateLimited) as caught:
        asyncio.run(go(f"{url}/v1"))
    assert endpoint.calls == 3
    assert f"{url}/v1" in str(caught.value)
    assert "sk-local-test-key" not in str(caught.value)
