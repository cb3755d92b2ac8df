"""The simulator over real HTTP, driven by the real ``openai`` SDK.

A uvicorn server on 127.0.0.1 (as ``world_url`` in conftest serves the world), the same app
in-process through ``httpx.ASGITransport``, and ``agentlab sim serve`` as a process.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from agentlab.llm.sim import build_sim_app
from agentlab.tools import builtin_tools

REPO = Path(__file__).parents[2]
TOOLS = [spec.openai_tool() for spec in builtin_tools()]
RESTOCK = "Restock the floor-3 printer's black toner from the Nagoya supplier"
NAGOYA = {"suppliers": [{"supplier_id": "SUP-000103", "name": "Nagoya Print Consumables"}]}
DOCS = (
    "How do I reset a forgotten password?\n<retrieved_documents>\n"
    '<document doc_id="KB-IT-002" chunk="0" title="Reset a forgotten password" '
    'data_class="internal" trust="internal">\nUse the self-service portal at '
    "password.example.co.jp to reset a forgotten password.\n</document>\n</retrieved_documents>"
)


async def _conversation(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(
        model="sim-large",
        messages=[{"role": "user", "content": RESTOCK}],
        tools=TOOLS,
        seed=11,
    )
    assert first.system_fingerprint is not None
    assert first.system_fingerprint.startswith("agentlab-simulator")
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "find_supplier"
    assert json.loads(call.function.arguments) == {"query": "Nagoya"}

    result = {"tool": "find_supplier", "status": "ok", "message": "done", "untrusted_data": NAGOYA}
    second = await client.chat.completions.create(
        model="sim-large",
        messages=[
            {"role": "user", "content": RESTOCK},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
        ],
        tools=TOOLS,
        seed=11,
    )
    [following] = second.choices[0].message.tool_calls or []
    assert following.function.name == "check_inventory"
    assert second.usage is not None
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens >= 1024


def test_the_openai_sdk_calls_tools_through_a_real_server(sim_url: str) -> None:
    async def go() -> None:
        async with openai.AsyncOpenAI(base_url=sim_url, api_key="unused", max_retries=0) as client:
            await _conversation(client)
            raw = await client.chat.completions.with_raw_response.create(
                model="sim-small", messages=[{"role": "user", "content": DOCS}]
            )
            assert raw.headers["x-agentlab-simulator"] == "sim-small"
            assert float(raw.headers["x-agentlab-simulated-latency-ms"]) > 0
            assert "[KB-IT-002]" in (raw.parse().choices[0].message.content or "")

    asyncio.run(go())


def test_a_streamed_answer_arrives_in_chunks_with_usage_last(sim_url: str) -> None:
    async def go() -> tuple[str, list[str | None], object]:
        async with openai.AsyncOpenAI(base_url=sim_url, api_key="unused", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="sim-large",
                messages=[{"role": "user", "content": DOCS}],
                stream=True,
                stream_options={"include_usage": True},
            )
            text, finishes, usage = "", [], None
            async for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    finishes.append(chunk.choices[0].finish_reason)
                else:
                    usage = chunk.usage
            return text, finishes, usage

    text, finishes, usage = asyncio.run(go())
    assert "[KB-IT-002]" in text
    assert finishes[-1] == "stop"
    assert usage is not None


def test_unknown_models_and_bad_requests_are_openai_errors(sim_url: str) -> None:
    async def go() -> None:
        async with openai.AsyncOpenAI(base_url=sim_url, api_key="unused", max_retries=0) as client:
            with pytest.raises(openai.NotFoundError, match="sim-large"):
                await client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
                )
            with pytest.raises(openai.BadRequestError, match="messages"):
                await client.chat.completions.create(model="sim-large", messages=[])
            models = await client.models.list()
            assert {m.id for m in models.data} == {
                "sim-gullible",
                "sim-hasty",
                "sim-large",
                "sim-small",
            }
            assert {m.owned_by for m in models.data} == {"agentlab-simulator"}

    asyncio.run(go())


def test_the_openai_sdk_works_in_process_through_an_asgi_transport() -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=build_sim_app())
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://sim/v1") as http,
            openai.AsyncOpenAI(
                base_url="http://sim/v1", api_key="unused", http_client=http, max_retries=0
            ) as client,
        ):
            await _conversation(client)

    asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_agentlab_sim_serve_serves_until_interrupted() -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "agentlab.cli",
        "sim",
        "serve",
        "--port",
        str(port),
        "--time-scale",
        "0",
    ]
    server = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.05)
        assert [m["id"] for m in models.json()["data"]] == [
            "sim-large",
            "sim-small",
            "sim-gullible",
            "sim-hasty",
        ]
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=20)
    assert server.returncode == 0, stderr
    assert f"agentlab simulator on http://127.0.0.1:{port}/v1" in stderr
