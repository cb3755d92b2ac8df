"""The simulator over HTTP: OpenAI's ``/v1/chat/completions`` and ``/v1/models``.

In-process: ``httpx.AsyncClient(transport=httpx.ASGITransport(app=build_sim_app()),
base_url="http://sim/v1")``, or the ``openai`` SDK with that ``http_client``. As a server:
``agentlab sim serve``. The contract is in ``docs/simulator.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from agentlab.llm.sim.policy import SimulatorPolicy
from agentlab.llm.sim.profiles import SimProfile
from agentlab.llm.sim.wire import RequestError, chunks

Sleep = Callable[[float], Awaitable[None]]
SIMULATOR_HEADER = "X-Agentlab-Simulator"
LATENCY_HEADER = "X-Agentlab-Simulated-Latency-Ms"


def build_sim_app(
    profiles: Mapping[str, SimProfile] | None = None,
    *,
    time_scale: float = 0.0,
    sleep: Sleep = asyncio.sleep,
) -> FastAPI:
    """The simulator as an ASGI app.

    Args:
        profiles: The model profiles to serve; the built-in ones when None.
        time_scale: How much of the modelled latency to really wait: 0 answers at once
            (tests, replays), 1.0 waits as long as the profile says a model would.
        sleep: How to wait (``asyncio.sleep``).
    """
    if time_scale < 0:
        raise ValueError(f"time_scale must be 0 or more, not {time_scale}")
    policy = SimulatorPolicy(profiles)
    app = FastAPI(title="agentlab simulator", version="1", docs_url=None, redoc_url=None)
    app.state.policy = policy

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            raw = await request.body()
            answer = policy.respond(raw)
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        if time_scale > 0:
            await sleep(answer.latency_ms / 1000 * time_scale)
        body = answer.body
        headers = {
            SIMULATOR_HEADER: body["model"],
            LATENCY_HEADER: f"{answer.latency_ms:.1f}",
            "Cache-Control": "no-store",
        }
        parsed = await request.json()
        if parsed.get("stream"):
            include = bool((parsed.get("stream_options") or {}).get("include_usage"))
            events: Iterator[str] = chunks(body, include_usage=include)
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        return JSONResponse(body, headers=headers)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [_model(p) for p in policy.profiles.values()]}
        )

    @app.get("/v1/models/{name}")
    async def model(name: str) -> JSONResponse:
        try:
            return JSONResponse(_model(policy.profile(name)))
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    return app


def _model(profile: SimProfile) -> dict[str, object]:
    return {
        "id": profile.name,
        "object": "model",
        "created": 1_767_225_600,
        "owned_by": "agentlab-simulator",
        "description": profile.description,
    }
