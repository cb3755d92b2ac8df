"""The OpenAI chat model against real-format chat-completions answers, over an httpx transport.

The bodies below are shaped as OpenAI's API answers them (ids, ``annotations``,
``service_tier``, ``*_tokens_details``, the 429's error object and headers), so the parsing
is tested against what an endpoint really sends, not against a simplified echo.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from agentlab.adapters import OpenAIChatModel
from agentlab.core.errors import ConfigError, ModelError, ModelRateLimited
from agentlab.llm import ChatModel, ChatRequest, LLMBudget, PriceTable, Usage
from tests.unit.llm._fake_time import FakeTime

KEY = "sk-test-chat-0123456789abcdef"
BASE_URL = "http://models.test/v1"
USER = {"role": "user", "content": "Order 20 boxes of A4 paper from Acme."}
FIND_SUPPLIER = {
    "type": "function",
    "function": {
        "name": "find_supplier",
        "description": "Find a supplier by name.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
            "additionalProperties": False,
        },
    },
}

TOOL_CALL_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-BkZ3Qv8cJ7x2Jm1sQeXk9YwZ5uH2a",
    "object": "chat.completion",
    "created": 1750331234,
    "model": "gpt-4.1-mini-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_8qj2Xw4m3ZbA0cR5tY1uV6nK",
                        "type": "function",
                        "function": {
                            "name": "find_supplier",
                            "arguments": '{"query":"Acme"}',
                        },
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
        "prompt_tokens": 1234,
        "completion_tokens": 56,
        "total_tokens": 1290,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_6f2eabb9a5",
}

REASONING_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-BkZ5n1vT3kQ0pW8dE2rX7yLmA4cJ9",
    "object": "chat.completion",
    "created": 1750331301,
    "model": "o4-mini-2025-04-16",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The order total is 20 x $4.50 = $90.00.",
                "refusal": None,
                "annotations": [],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 2000,
        "completion_tokens": 1000,
        "total_tokens": 3000,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 832,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": None,
}

REFUSAL_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-BkZ7aR2fG5hJ8kL1mN4pQ7sT0vW3x",
    "object": "chat.completion",
    "created": 1750331377,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": "I'm sorry, I can't help with that request.",
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 48,
        "completion_tokens": 11,
        "total_tokens": 59,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_a288987b44",
}

# vLLM and older servers send no details, or null ones.
PLAIN_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-7f3c2a9e1b",
    "object": "chat.completion",
    "created": 1750331400,
    "model": "gpt-4.1-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Done.", "tool_calls": []},
            "logprobs": None,
            "finish_reason": "stop",
            "stop_reason": None,
        }
    ],
    "usage": {
        "prompt_tokens": 30,
        "completion_tokens": 2,
        "total_tokens": 32,
        "prompt_tokens_details": None,
    },
}

RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for gpt-4.1-mini in organization org-abc123 on tokens "
        "per min (TPM): Limit 200000, Used 199500, Requested 1290. Please try again in 210ms. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
RATE_LIMIT_HEADERS = {
    "retry-after-ms": "210",
    "retry-after": "1",
    "x-ratelimit-limit-requests": "5000",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-requests": "4999",
    "x-ratelimit-remaining-tokens": "500",
    "x-ratelimit-reset-requests": "12ms",
    "x-ratelimit-reset-tokens": "210ms",
    "x-request-id": "req_5e2b1c0d9a8f7e6d5c4b3a2918070605",
}
SERVER_ERROR = {
    "error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}

Reply = (
    httpx.Response
    | Exception
    | Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
)


def answer(body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(
        200, json=body, headers={"x-request-id": "req_1", "openai-processing-ms": "412", **headers}
    )


class FakeOpenAI:
    """Answers POST /v1/chat/completions with scripted replies, and keeps what it was sent."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.timeouts: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        assert request.method == "POST"
        assert request.url.path == "/v1/chat/completions"
        self.requests.append(json.loads(request.content))
        self.headers.append(request.headers)
        self.timeouts.append(request.extensions.get("timeout"))
        reply = self.replies.pop(0) if self.replies else answer(TOOL_CALL_ANSWER)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply


@pytest.fixture
def server() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime(start=500.0)


@pytest.fixture
def http(server: FakeOpenAI) -> Iterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    yield client
    asyncio.run(client.aclose())


@pytest.fixture
def make(
    http: httpx.AsyncClient, fake: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., OpenAIChatModel]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def make_(model: str = "gpt-4.1-mini", **kwargs: Any) -> OpenAIChatModel:
        kwargs.setdefault("base_url", BASE_URL)
        kwargs.setdefault("http_client", http)
        return OpenAIChatModel(model, clock=fake.monotonic, sleep=fake.sleep, **kwargs)

    return make_


def ask(model: OpenAIChatModel, request: ChatRequest | None = None) -> Any:
    return asyncio.run(model.acomplete(request or ChatRequest(messages=(USER,))))


def test_a_tool_call_answer_is_parsed_and_priced(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    model = make()
    assert isinstance(model, ChatModel)
    assert model.name == "gpt-4.1-mini"
    response = ask(model, ChatRequest(messages=(USER,), tools=(FIND_SUPPLIER,)))
    assert response.response_id == "chatcmpl-BkZ3Qv8cJ7x2Jm1sQeXk9YwZ5uH2a"
    assert response.model == "gpt-4.1-mini-2025-04-14"
    assert response.content is None
    assert response.refusal is None
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert (call.id, call.name, call.arguments) == (
        "call_8qj2Xw4m3ZbA0cR5tY1uV6nK",
        "find_supplier",
        '{"query":"Acme"}',
    )
    assert call.parsed_arguments() == {"query": "Acme"}
    assert response.usage == Usage(
        prompt_tokens=1234, completion_tokens=56, cached_tokens=1024, reasoning_tokens=0
    )
    # the dated name is priced as gpt-4.1-mini: 210 x $0.40 + 1024 x $0.10 + 56 x $1.60 per MTok
    assert response.cost_usd == pytest.approx((210 * 0.40 + 1024 * 0.10 + 56 * 1.60) / 1e6)
    assert response.is_simulated is False
    assert response.waited_ms == 0
    assert response.as_message()["tool_calls"][0]["function"]["name"] == "find_supplier"


def test_the_request_carries_the_repeatable_defaults_and_omits_what_is_unset(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    ask(make(), ChatRequest(messages=(USER,)))
    assert server.requests[0] == {
        "model": "gpt-4.1-mini",
        "messages": [USER],
        "temperature": 0.0,
        "top_p": 1.0,
    }
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    fmt = {"type": "json_schema", "json_schema": {"name": "plan", "strict": True, "schema": {}}}
    request = ChatRequest(
        messages=(USER,),
        tools=(FIND_SUPPLIER,),
        tool_choice="required",
        response_format=fmt,
        max_tokens=300,
    )
    ask(make(seed=7), request)
    sent = server.requests[1]
    assert sent["tools"] == [FIND_SUPPLIER]
    assert (sent["tool_choice"], sent["response_format"], sent["max_tokens"]) == (
        "required",
        fmt,
        300,
    )
    assert sent["seed"] == 7  # the model's default seed
    ask(make(seed=7), ChatRequest(messages=(USER,), seed=42))
    assert server.requests[2]["seed"] == 42  # the request's own wins


def test_reasoning_tokens_are_billed_as_output(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    server.replies = [answer(REASONING_ANSWER)]
    response = ask(make("o4-mini"))
    assert response.usage.reasoning_tokens == 832
    assert response.usage.completion_tokens == 1000
    assert response.content == "The order total is 20 x $4.50 = $90.00."
    assert response.cost_usd == pytest.approx((2000 * 1.10 + 1000 * 4.40) / 1e6)


def test_missing_or_null_token_details_count_as_zero(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    server.replies = [answer(PLAIN_ANSWER)]
    response = ask(make())
    assert response.usage == Usage(prompt_tokens=30, completion_tokens=2)
    assert response.tool_calls == ()
    assert response.content == "Done."


def test_a_refusal_is_kept_apart_from_the_content(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    server.replies = [answer(REFUSAL_ANSWER)]
    response = ask(make("gpt-4o"))
    assert response.refusal == "I'm sorry, I can't help with that request."
    assert response.content is None
    assert response.finish_reason == "stop"
    assert response.as_message()["refusal"] == response.refusal


def test_the_simulator_is_recognised_and_an_unknown_answering_name_is_priced_as_asked(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    body = copy.deepcopy(PLAIN_ANSWER)
    body["model"] = "sim-large@profile-v3"
    body["system_fingerprint"] = "agentlab-simulator-0.1-seed-1234"
    server.replies = [answer(body)]
    response = ask(make("sim-large", api_key_env=None))
    assert response.is_simulated is True
    assert response.model == "sim-large@profile-v3"
    assert response.cost_usd == pytest.approx((30 * 2.00 + 2 * 8.00) / 1e6)
    assert server.headers[0]["authorization"] == "Bearer no-key"  # a fixed non-secret


def test_a_429_waits_its_retry_after_through_the_budget_then_succeeds(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    messages: list[str] = []
    budget = LLMBudget(
        300, 200_000, clock=fake.monotonic, sleep=fake.sleep, on_wait=messages.append
    )
    server.replies = [httpx.Response(429, json=RATE_LIMITED, headers=RATE_LIMIT_HEADERS)]
    response = ask(make(budget=budget))
    assert len(server.requests) == 2
    assert response.finish_reason == "tool_calls"
    # retry-after-ms (210) is preferred to the coarser retry-after (1 s)
    assert messages == [
        "LLM budget: waiting 210 ms for the endpoint's 429 (it asked to retry after 210 ms)"
    ]
    assert response.waited_ms == pytest.approx(210)
    assert response.latency_ms == pytest.approx(0)  # the fake clock moved only for the wait
    assert budget.requests_granted == 2


def test_a_429_pauses_other_runs_sharing_the_budget(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    messages: list[str] = []
    budget = LLMBudget(
        300, 200_000, clock=fake.monotonic, sleep=fake.sleep, on_wait=messages.append
    )
    server.replies = [
        httpx.Response(429, json=RATE_LIMITED, headers={"retry-after": "2"}),
        answer(PLAIN_ANSWER),
        answer(PLAIN_ANSWER),
    ]
    model = make(budget=budget)

    async def two_runs() -> list[Any]:
        async def second_run() -> Any:
            while not messages:  # start once the first run waits for its 429
                await asyncio.sleep(0)
            return await model.acomplete(ChatRequest(messages=(USER,)))

        return await asyncio.gather(model.acomplete(ChatRequest(messages=(USER,))), second_run())

    first, second = asyncio.run(two_runs())
    assert len(server.requests) == 3
    assert first.waited_ms == pytest.approx(2000)
    assert second.waited_ms == pytest.approx(2000)  # it too waited for the other's 429
    assert len(messages) == 1


def test_retry_after_as_an_http_date_is_read_against_the_answers_date(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    budget = LLMBudget(300, 200_000, clock=fake.monotonic, sleep=fake.sleep)
    server.replies = [
        httpx.Response(
            429,
            json=RATE_LIMITED,
            headers={
                "date": "Thu, 19 Jun 2025 10:00:00 GMT",
                "retry-after": "Thu, 19 Jun 2025 10:00:03 GMT",
            },
        )
    ]
    assert ask(make(budget=budget)).waited_ms == pytest.approx(3000)


def test_without_a_budget_a_429_still_waits_its_retry_after(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    server.replies = [httpx.Response(429, json=RATE_LIMITED, headers={"retry-after-ms": "20"})]
    response = ask(make())
    assert fake.sleeps == [pytest.approx(0.02)]
    assert response.waited_ms == pytest.approx(20)


def test_429s_past_the_retries_are_model_rate_limited(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    budget = LLMBudget(300, 200_000, clock=fake.monotonic, sleep=fake.sleep)
    server.replies = [
        httpx.Response(429, json=RATE_LIMITED, headers=RATE_LIMIT_HEADERS) for _ in range(4)
    ]
    with pytest.raises(ModelRateLimited, match="after 3 retries") as caught:
        ask(make(budget=budget, max_retries=3))
    assert len(server.requests) == 4
    assert "http://models.test/v1" in str(caught.value)
    assert "gpt-4.1-mini" in str(caught.value)
    assert KEY not in str(caught.value)


def test_a_500_is_retried_with_backoff(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    server.replies = [
        httpx.Response(500, json=SERVER_ERROR),
        httpx.Response(503, text="upstream connect error"),
    ]
    response = ask(make(backoff_s=0.5))
    assert len(server.requests) == 3
    assert fake.sleeps == [0.5, 1.0]  # doubling
    assert response.latency_ms == pytest.approx(1500)  # retries count as latency
    assert response.waited_ms == 0


def test_lasting_5xx_is_a_model_error_naming_the_endpoint_and_model_not_the_key(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    server.replies = [httpx.Response(500, json=SERVER_ERROR) for _ in range(3)]
    with pytest.raises(ModelError, match="answered 500") as caught:
        ask(make(max_retries=2))
    assert not isinstance(caught.value, ModelRateLimited)
    assert "http://models.test/v1" in str(caught.value)
    assert "gpt-4.1-mini" in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("failure", "said"),
    [(httpx.ConnectError("refused"), "unreachable"), (httpx.ReadTimeout("slow"), "timed out")],
)
def test_a_dropped_connection_or_timeout_is_retried_then_a_model_error(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, failure: Exception, said: str
) -> None:
    server.replies = [failure]
    assert ask(make()).finish_reason == "tool_calls"
    server.replies = [failure, failure]
    with pytest.raises(ModelError, match=said):
        ask(make(max_retries=1))


def test_a_body_that_is_not_json_is_a_model_error_not_retried(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    server.replies = [
        httpx.Response(200, text="<html><body>Welcome to nginx!</body></html>")
    ]  # a base_url without /v1, say
    with pytest.raises(ModelError, match="not a chat completion: the body is not JSON") as caught:
        ask(make())
    assert len(server.requests) == 1
    assert caught.value.hint is not None
    assert "/v1" in caught.value.hint


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"object": "list", "data": [], "model": "x"}, "field 'id'"),
        ({**PLAIN_ANSWER, "choices": []}, "field 'choices'"),
        ({**PLAIN_ANSWER, "object": "text_completion"}, "'text_completion'"),
        ({k: v for k, v in PLAIN_ANSWER.items() if k != "usage"}, "field 'usage'"),
        ({"error": {"message": "model overloaded", "type": "server_error"}}, "overloaded"),
        ([1, 2, 3], "(body)"),
    ],
)
def test_json_that_is_not_a_chat_completion_is_a_model_error(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, body: Any, said: str
) -> None:
    server.replies = [httpx.Response(200, json=body)]
    with pytest.raises(ModelError, match="not a chat completion") as caught:
        ask(make())
    assert said in str(caught.value)


def test_a_refused_key_is_a_config_error_without_the_key(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    body = {"error": {"message": "Incorrect API key provided: sk-test***cdef.", "code": None}}
    server.replies = [httpx.Response(401, json=body)]
    with pytest.raises(ConfigError, match="refused the API key") as caught:
        ask(make())
    assert KEY not in str(caught.value)


def test_a_bad_request_is_a_model_error_with_the_endpoints_reason_and_no_retry(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    body = {
        "error": {
            "message": "Invalid schema for function 'find_supplier': 'query' is not valid.",
            "type": "invalid_request_error",
            "param": "tools[0].function.parameters",
            "code": "invalid_function_parameters",
        }
    }
    server.replies = [httpx.Response(400, json=body)]
    with pytest.raises(ModelError, match=r"\(400\): Invalid schema for function"):
        ask(make())
    assert len(server.requests) == 1


def test_the_key_comes_from_the_named_environment_variable_only(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set") as caught:
        make()
    assert caught.value.hint is not None
    assert "api_key_env=None" in caught.value.hint
    monkeypatch.setenv("VLLM_KEY", "")
    with pytest.raises(ConfigError, match="VLLM_KEY is not set"):
        make(api_key_env="VLLM_KEY")
    monkeypatch.setenv("VLLM_KEY", "sk-vllm-secret")
    ask(make(api_key_env="VLLM_KEY"))
    assert server.headers[-1]["authorization"] == "Bearer sk-vllm-secret"


def test_an_unpriced_model_fails_at_construction_naming_the_price_file(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    with pytest.raises(ConfigError, match=r"no price for model 'llama-3-70b' in .*prices\.yaml"):
        make("llama-3-70b")
    table = PriceTable.model_validate(
        {"models": {"llama-3-70b": {"input_usd_per_mtok": 0, "output_usd_per_mtok": 0,
                                    "source": "self-hosted", "as_of": "2026-01-01"}}}
    )  # fmt: skip
    server.replies = [answer({**PLAIN_ANSWER, "model": "llama-3-70b"})]
    assert ask(make("llama-3-70b", prices=table)).cost_usd == 0


def test_credentials_in_base_url_are_never_shown(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    server.replies = [httpx.Response(502, text="bad gateway")]
    with pytest.raises(ModelError) as caught:
        ask(make(base_url="http://user:hunter2@models.test/v1", max_retries=0))
    assert "hunter2" not in str(caught.value)
    assert "http://models.test/v1" in str(caught.value)


def test_the_budget_is_charged_what_the_answer_really_used(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    messages: list[str] = []
    # 2000 tokens a minute; the first answer reports 1290 (TOOL_CALL_ANSWER's usage)
    budget = LLMBudget(300, 2000, clock=fake.monotonic, sleep=fake.sleep, on_wait=messages.append)
    model = make(budget=budget)
    ask(model)
    big = ChatRequest(messages=(USER,), max_tokens=1000)  # about 1020 tokens estimated
    response = ask(model, big)
    # 710 left; about 310 short at 2000 per 60 s: a wait of about 9.3 s
    assert response.waited_ms == pytest.approx(
        (big.estimated_prompt_tokens() + 1000 - 710) * 60 / 2000 * 1000
    )
    assert messages[0].startswith("LLM budget: waiting 9.")
    assert "tokens-per-minute (2000/min)" in messages[0]


def test_a_client_passed_in_stays_open_and_one_made_here_is_closed(
    make: Callable[..., OpenAIChatModel], http: httpx.AsyncClient
) -> None:
    async def go() -> tuple[OpenAIChatModel, OpenAIChatModel]:
        async with make() as borrowed:
            pass
        async with make(http_client=None) as owned:
            pass
        return borrowed, owned

    borrowed, owned = asyncio.run(go())
    assert not http.is_closed
    assert owned._client.is_closed()
    assert not borrowed._client.is_closed()


def test_a_request_larger_than_the_budget_is_refused_before_it_is_sent(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    budget = LLMBudget(300, 100, clock=fake.monotonic, sleep=fake.sleep)
    with pytest.raises(ConfigError, match=r"tokens_per_minute \(100/min\)"):
        ask(make(budget=budget), ChatRequest(messages=(USER,), max_tokens=500))
    assert server.requests == []


def test_a_cancelled_request_gives_its_tokens_back_to_the_budget(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI, fake: FakeTime
) -> None:
    budget = LLMBudget(300, 2000, clock=fake.monotonic, sleep=fake.sleep)

    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    server.replies = [never]
    model = make(budget=budget)

    async def go() -> float:
        task = asyncio.create_task(model.acomplete(ChatRequest(messages=(USER,), max_tokens=900)))
        while not server.requests:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await budget.acquire(2000)  # a whole minute's tokens: there if given back

    assert asyncio.run(go()) == 0


def test_the_request_goes_as_json_with_the_clients_headers_and_timeout(
    make: Callable[..., OpenAIChatModel], server: FakeOpenAI
) -> None:
    ask(make(timeout_s=12.5), ChatRequest(messages=(USER,)))
    headers = server.headers[0]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("AsyncOpenAI/Python")  # the SDK's own client
    assert server.timeouts[0] == {"connect": 12.5, "read": 12.5, "write": 12.5, "pool": 12.5}
