"""Spans leave over OTLP/HTTP to a collector: here, a tiny receiver on a loopback port."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from agentlab.lab.live import open_live_agent
from agentlab.ops import configure_tracing
from agentlab.store import MemoryEventStore
from tests.integration._serving import serving


def receiver(received: list[ExportTraceServiceRequest]) -> FastAPI:
    """Accepts POST /v1/traces in OTLP's protobuf encoding, as a collector does."""
    app = FastAPI()

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        received.append(message)
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    return app


def value(attribute: Any) -> Any:
    kind = attribute.value.WhichOneof("value")
    inner = getattr(attribute.value, kind)
    if kind == "array_value":
        return [getattr(v, v.WhichOneof("value")) for v in inner.values]
    return inner


def test_a_runs_spans_reach_an_otlp_http_collector() -> None:
    received: list[ExportTraceServiceRequest] = []
    with serving(receiver(received), name="otlp receiver") as url:
        tracing = configure_tracing(otlp_endpoint=url, service_name="agentlab-test")
        try:

            async def run() -> Any:
                async with open_live_agent("single", store=MemoryEventStore(), seed=3) as live:
                    return await live.agent.arun(
                        "Order 16 TONER-BK-05 from SUP-000103.",
                        actor="alice",
                        use_case="procurement",
                    )

            result = asyncio.run(run())
            assert tracing.force_flush(10_000)
        finally:
            tracing.shutdown()
    spans = [
        (resource_spans.resource, span)
        for message in received
        for resource_spans in message.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    names = {span.name for _, span in spans}
    assert {"invoke_agent single", "node plan", "chat sim-large"} <= names
    assert "execute_tool create_purchase_order" in names
    services = {
        value(a) for resource, _ in spans for a in resource.attributes if a.key == "service.name"
    }
    assert services == {"agentlab-test"}
    [chat, *_] = [span for _, span in spans if span.name == "chat sim-large"]
    attributes = {a.key: value(a) for a in chat.attributes}
    assert attributes["gen_ai.request.model"] == "sim-large"
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["agentlab.run.id"] == result.run_id
    assert len({span.trace_id for _, span in spans}) == 1
