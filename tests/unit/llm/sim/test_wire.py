"""The wire: OpenAI-format answers, errors, streams and usage; the same request, the same bytes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from agentlab.llm.sim import LATENCY_HEADER, SIMULATOR_HEADER, RequestError, build_sim_app
from tests.unit.llm.sim._chat import POLICY, SYSTEM, TOOLS

TASK = {"role": "user", "content": "Close ticket TCK-000001"}


def _post(body: dict[str, Any] | bytes, app: Any = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app or build_sim_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sim/v1") as http:
            if isinstance(body, bytes):
                return await http.post("/chat/completions", content=body)
            return await http.post("/chat/completions", json=body)

    return asyncio.run(go())


def test_the_same_request_gets_identical_bytes_and_headers() -> None:
    body = {"model": "sim-small", "messages": [SYSTEM, TASK], "tools": TOOLS, "seed": 7}
    app = build_sim_app()
    first, second = _post(body, app), _post(body, app)
    assert first.status_code == 200
    assert first.content == second.content
    assert first.headers[SIMULATOR_HEADER] == "sim-small"
    assert float(first.headers[LATENCY_HEADER]) > 0
    assert first.headers[LATENCY_HEADER] == second.headers[LATENCY_HEADER]


def test_the_answer_is_a_chat_completion_that_names_the_simulator() -> None:
    answer = _post({"model": "sim-large", "messages": [SYSTEM, TASK], "tools": TOOLS}).json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "sim-large"
    assert answer["system_fingerprint"].startswith("agentlab-simulator")
    assert answer["id"].startswith("chatcmpl-sim")
    [call] = answer["choices"][0]["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert isinstance(call["function"]["arguments"], str)
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0  # large reasons
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0  # nothing repeated yet


def test_a_different_seed_or_profile_changes_the_ids_but_not_the_shape() -> None:
    one = POLICY.respond({"model": "sim-large", "messages": [TASK], "seed": 1}).body
    two = POLICY.respond({"model": "sim-large", "messages": [TASK], "seed": 2}).body
    assert one["id"] != two["id"]
    assert one["created"] != two["created"] or one["id"] != two["id"]


def test_a_repeated_prefix_is_reported_as_cached_in_steps_of_128() -> None:
    history = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search_tickets", "arguments": '{"status": null}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": json.dumps(
                {
                    "tool": "search_tickets",
                    "status": "ok",
                    "message": "done",
                    "untrusted_data": {"tickets": []},
                }
            ),
        },
    ]
    body = POLICY.respond(
        {"model": "sim-large", "messages": [SYSTEM, TASK, *history], "tools": TOOLS}
    ).body
    cached = body["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024
    assert cached % 128 == 0
    assert cached <= body["usage"]["prompt_tokens"]


def test_small_is_cheaper_and_faster_than_large_on_the_same_request() -> None:
    request = {"messages": [SYSTEM, TASK], "tools": TOOLS, "seed": 3}
    large = POLICY.respond({**request, "model": "sim-large"})
    small = POLICY.respond({**request, "model": "sim-small"})
    assert small.latency_ms < large.latency_ms
    assert small.body["usage"]["completion_tokens"] < large.body["usage"]["completion_tokens"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [TASK]}, "model"),
        ({"model": "sim-large", "messages": []}, "messages"),
        (
            {"model": "sim-large", "messages": [{"role": "robot", "content": "hi"}]},
            "messages.0.role",
        ),
        ({"model": "sim-large", "messages": [TASK], "temperature": 3}, "temperature"),
        (
            {"model": "sim-large", "messages": [TASK], "tools": [{"type": "function"}]},
            "tools.0.function",
        ),
        (
            {"model": "sim-large", "messages": [{"role": "tool", "content": "{}"}]},
            "messages.0.tool_call_id",
        ),
        ({"model": "sim-large", "messages": [TASK], "n": 2}, "n"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    response = _post(body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]


def test_a_body_that_is_not_json_is_a_400() -> None:
    response = _post(b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_an_unknown_model_is_a_404_listing_the_profiles() -> None:
    response = _post({"model": "gpt-4o", "messages": [TASK]})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "sim-large" in error["message"]
    with pytest.raises(RequestError):
        POLICY.profile("gpt-4o")


def test_models_lists_the_profiles_as_the_simulators_own() -> None:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_sim_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sim/v1") as http:
            return await http.get("/models")

    data = asyncio.run(go()).json()["data"]
    assert {m["id"] for m in data} == {"sim-gullible", "sim-hasty", "sim-large", "sim-small"}
    assert {m["owned_by"] for m in data} == {"agentlab-simulator"}
    assert all("simulator" in m["description"] for m in data)


def test_a_streamed_answer_is_chunks_that_add_up_to_the_answer_then_usage_and_done() -> None:
    request = {"model": "sim-large", "messages": [SYSTEM, TASK], "tools": TOOLS, "seed": 5}
    whole = POLICY.respond(request).body
    response = _post({**request, "stream": True, "stream_options": {"include_usage": True}})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole["usage"]
    arguments = "".join(
        call["function"].get("arguments", "")
        for c in chunks[:-1]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    )
    expected = whole["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert arguments == expected
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_max_tokens_cuts_a_long_answer_with_finish_reason_length() -> None:
    question = {
        "role": "user",
        "content": "How do I connect to the VPN?\n<retrieved_documents>\n"
        '<document doc_id="KB-IT-001" chunk="0" title="Connect to the corporate VPN" '
        'data_class="internal" trust="internal">\nYou need the VPN to reach internal '
        "systems from outside the office. Open GlobalConnect and enter the portal "
        "address vpn.example.co.jp to connect.\n</document>\n</retrieved_documents>",
    }
    body = POLICY.respond({"model": "sim-large", "messages": [question], "max_tokens": 5}).body
    assert body["choices"][0]["finish_reason"] == "length"
    assert (
        body["usage"]["completion_tokens"]
        - (body["usage"]["completion_tokens_details"]["reasoning_tokens"])
        == 5
    )


def test_time_scale_waits_the_modelled_latency() -> None:
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    app = build_sim_app(time_scale=0.5, sleep=sleep)
    response = _post({"model": "sim-small", "messages": [TASK]}, app)
    assert waited == [pytest.approx(float(response.headers[LATENCY_HEADER]) / 1000 * 0.5)]
