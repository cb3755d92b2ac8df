"""OpenTelemetry spans for runs, graph nodes, model calls and tool calls.

One trace per stretch of a run (its start, and each resume after an approval)::

    invoke_agent single                  agentlab.run.id, gen_ai.agent.name, actor, use case
      node plan                          agentlab.node
        chat sim-large                   gen_ai.* request model, token usage, finish reasons
      node act
        execute_tool create_purchase_order   agentlab.step.id, agentlab.idempotency_key,
                                             agentlab.tool.outcome

Model spans follow OpenTelemetry's GenAI semantic conventions (``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` ...); what
only agentlab knows is under ``agentlab.*``. Every span carries ``agentlab.run.id``, so the
spans of one run are found together even across its resumes.

Nothing is traced until :func:`configure_tracing` is called (the gateway and ``agentlab serve``
do; a notebook may): until then every helper here hands out OpenTelemetry's non-recording
span, and a run pays for a context manager per span and nothing else. Node spans come from a
wrapper put around a graph's nodes when the agent is built, and only if tracing is on then:
configure tracing before building agents. Tracing uses its own
``TracerProvider`` rather than the process-wide one, so tests and notebooks can point it
somewhere and back; an application that set a global SDK provider (``opentelemetry-instrument``)
is traced through that one when agentlab's is not configured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from agentlab._version import __version__
from agentlab.core.errors import ConfigError, MissingDependency

logger = logging.getLogger(__name__)

TRACER_NAME = "agentlab"

# -- attribute names: OpenTelemetry's GenAI semantic conventions ----------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
ERROR_TYPE = "error.type"

# -- attribute names: agentlab's own ---------------------------------------------------------
RUN_ID = "agentlab.run.id"
RUN_ACTOR = "agentlab.run.actor"
RUN_USE_CASE = "agentlab.run.use_case"
RUN_IS_RESUMED = "agentlab.run.is_resumed"
RUN_STATUS = "agentlab.run.status"
"""Where the run stands when this stretch ends: ``finished`` or ``awaiting_approval``."""
RUN_OUTCOME = "agentlab.run.outcome"
"""The run's status by its events: ``running``, ``succeeded``, ``failed``, ``cancelled``."""
NODE = "agentlab.node"
"""The graph node a span runs (``plan``, ``act`` ...)."""
MODEL_ROLE = "agentlab.model.role"
"""What a model was asked as: ``agent``, ``planner``, ``verifier``, ``answer``."""
INTERRUPTED = "agentlab.interrupted"
"""Set on a span its code left by an interruption that is not an error (an approval wait)."""
STEP_ID = "agentlab.step.id"
IDEMPOTENCY_KEY = "agentlab.idempotency_key"
TOOL_OUTCOME = "agentlab.tool.outcome"
"""The executor's outcome: ``ok``, ``replayed``, ``previewed``, ``awaiting_approval``,
``rejected``, ``blocked``, ``invalid`` or ``failed``."""
COST_USD = "agentlab.cost_usd"
IS_SIMULATED = "agentlab.model.is_simulated"

SIMULATOR_PROVIDER = "agentlab.simulator"
"""``gen_ai.provider.name`` of answers from the bundled simulator."""

_FAILED_OUTCOMES = frozenset({"failed", "invalid"})


@dataclass
class Tracing:
    """Tracing as :func:`configure_tracing` set it up; ``shutdown`` flushes and stops it."""

    provider: TracerProvider
    destination: str
    """Where spans go, in words: ``otlp http://...``, ``store duckdb:///...``, ``exporter``."""
    is_shut_down: bool = False

    def force_flush(self, timeout_ms: int = 30_000) -> bool:
        """Export every finished span now; True when all were exported in time."""
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        """Flush, stop the exporters, and go back to no tracing if this one is current.

        Safe to call more than once.
        """
        if not self.is_shut_down:
            self.is_shut_down = True
            self.provider.shutdown()
        with _lock:
            global _current  # noqa: PLW0603 -- the one switch that turns tracing on and off
            if _current is self:
                _current = None


_lock = threading.Lock()
_current: Tracing | None = None


def configure_tracing(
    *,
    otlp_endpoint: str | None = None,
    spans_url: str | None = None,
    exporter: SpanExporter | None = None,
    service_name: str = "agentlab",
    batch: bool = True,
) -> Tracing:
    """Turn tracing on for this process, replacing any earlier configuration.

    Exactly one destination is used, the first given of: ``exporter``, ``otlp_endpoint``,
    ``spans_url``.

    Args:
        otlp_endpoint: An OpenTelemetry collector's OTLP/HTTP base URL
            (``http://collector:4318``); ``/v1/traces`` is added unless the URL ends with it.
            Needs the ``otlp`` extra.
        spans_url: Where the store keeps spans: ``duckdb:///path/spans.duckdb``, read back with
            :func:`agentlab.ops.load_spans` for a timeline.
        exporter: Any SDK span exporter (tests pass an ``InMemorySpanExporter``).
        service_name: The ``service.name`` resource attribute.
        batch: Export in batches from a background thread (the default); False exports each
            span as it ends, in the thread that ends it.

    Raises:
        ConfigError: no destination was given, or the spans URL is not a DuckDB URL.
        MissingDependency: ``otlp_endpoint`` was given without the ``otlp`` extra.
    """
    if exporter is not None:
        destination = "exporter"
    elif otlp_endpoint:
        exporter, destination = _otlp_exporter(otlp_endpoint), f"otlp {otlp_endpoint}"
    elif spans_url:
        from agentlab.ops.spans import DuckDBSpanExporter  # noqa: PLC0415 - duckdb on use

        exporter, destination = DuckDBSpanExporter(spans_url), f"store {spans_url}"
    else:
        raise ConfigError(
            "configure_tracing() was given nowhere to send spans",
            hint="pass otlp_endpoint (AGENTLAB_OTLP_ENDPOINT), spans_url or exporter",
        )
    resource = Resource.create({"service.name": service_name, "service.version": __version__})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    tracing = Tracing(provider, destination)
    global _current
    with _lock:
        previous, _current = _current, tracing
    if previous is not None:
        previous.shutdown()
    logger.info("tracing to %s", destination)
    return tracing


def current_tracing() -> Tracing | None:
    """The tracing :func:`configure_tracing` set up, or None."""
    return _current


def _otlp_exporter(endpoint: str) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ImportError as exc:
        raise MissingDependency(
            "exporting traces over OTLP needs opentelemetry-exporter-otlp-proto-http",
            hint="pip install 'agentlab[otlp]'",
        ) from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return OTLPSpanExporter(endpoint=url)


def _tracer() -> trace.Tracer | None:
    tracing = _current
    if tracing is not None:
        return tracing.provider.get_tracer(TRACER_NAME, __version__)
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):  # the application configured the global SDK one
        return provider.get_tracer(TRACER_NAME, __version__)
    return None


def is_tracing() -> bool:
    """True when spans are recorded somewhere."""
    return _tracer() is not None


@contextmanager
def span(
    name: str,
    attributes: dict[str, Any] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    quiet: tuple[type[BaseException], ...] = (),
) -> Iterator[Span]:
    """A span around the block, made current so that spans inside it are its children.

    An exception marks the span as an error and goes on, except one of ``quiet``'s types
    (an interruption such as an approval wait) or a cancellation: those end the span with
    ``agentlab.interrupted`` set to the exception's type.

    Without tracing, yields OpenTelemetry's non-recording span: its setters do nothing.
    """
    tracer = _tracer()
    if tracer is None:
        yield INVALID_SPAN
        return
    with tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=_clean(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            if isinstance(exc, quiet) or not isinstance(exc, Exception):
                current.set_attribute(INTERRUPTED, type(exc).__name__)
            else:
                current.record_exception(exc)
                current.set_attribute(ERROR_TYPE, _error_type(exc))
                current.set_status(Status(StatusCode.ERROR, str(exc)[:300]))
            raise


def _error_type(exc: BaseException) -> str:
    return str(getattr(exc, "code", None) or type(exc).__qualname__)


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes without None values (OpenTelemetry refuses them, with a warning)."""
    return {key: value for key, value in attributes.items() if value is not None}


def set_attributes(current: Span, attributes: dict[str, Any]) -> None:
    """Set the attributes that are not None on ``current``."""
    if current.is_recording():
        current.set_attributes(_clean(attributes))


# -- the four kinds of span ------------------------------------------------------------------


def run_span(
    run_id: str,
    *,
    config: str,
    actor: str,
    use_case: str,
    model: str,
    is_resumed: bool,
    quiet: tuple[type[BaseException], ...] = (),
) -> AbstractContextManager[Span]:
    """The span of one stretch of a run: ``invoke_agent <config>``.

    Args:
        run_id: The run; also ``gen_ai.conversation.id``.
        config: The agent configuration (``gen_ai.agent.name``).
        actor: Who the run acts for.
        use_case: The policy's use case.
        model: The model the agent was built with (``gen_ai.request.model``).
        is_resumed: True for a stretch that resumes the run.
        quiet: Exceptions that end the stretch without being an error.
    """
    return span(
        f"invoke_agent {config}",
        {
            GEN_AI_OPERATION_NAME: "invoke_agent",
            GEN_AI_AGENT_NAME: config,
            GEN_AI_CONVERSATION_ID: run_id,
            GEN_AI_REQUEST_MODEL: model,
            RUN_ID: run_id,
            RUN_ACTOR: actor,
            RUN_USE_CASE: use_case,
            RUN_IS_RESUMED: is_resumed,
        },
        quiet=quiet,
    )


def end_run_span(current: Span, *, status: str, outcome: str, cost_usd: float) -> None:
    """Record where the run stands as its stretch ends."""
    set_attributes(current, {RUN_STATUS: status, RUN_OUTCOME: outcome, COST_USD: cost_usd})
    if outcome == "failed" and current.is_recording():
        current.set_status(Status(StatusCode.ERROR, "the run failed"))


def node_span(
    node: str, *, run_id: str | None, quiet: tuple[type[BaseException], ...] = ()
) -> AbstractContextManager[Span]:
    """The span of one graph node's execution: ``node <name>``."""
    return span(f"node {node}", {NODE: node, RUN_ID: run_id}, quiet=quiet)


def model_span(
    model: str, *, run_id: str | None, role: str | None = None, seed: int | None = None
) -> AbstractContextManager[Span]:
    """The span of one model request: ``chat <model>``, a client span."""
    return span(
        f"chat {model}",
        {
            GEN_AI_OPERATION_NAME: "chat",
            GEN_AI_REQUEST_MODEL: model,
            GEN_AI_REQUEST_SEED: seed,
            RUN_ID: run_id,
            MODEL_ROLE: role,
        },
        kind=SpanKind.CLIENT,
    )


def end_model_span(
    current: Span,
    *,
    response_model: str,
    input_tokens: int,
    output_tokens: int,
    finish_reasons: Sequence[str],
    is_simulated: bool,
    cost_usd: float,
) -> None:
    """Record the model's answer on its span: token usage, finish reasons, cost."""
    set_attributes(
        current,
        {
            GEN_AI_PROVIDER_NAME: SIMULATOR_PROVIDER if is_simulated else "openai",
            GEN_AI_RESPONSE_MODEL: response_model,
            GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
            GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            GEN_AI_RESPONSE_FINISH_REASONS: tuple(r for r in finish_reasons if r),
            IS_SIMULATED: is_simulated,
            COST_USD: cost_usd,
        },
    )


def tool_span(
    tool: str, *, run_id: str, call_id: str | None = None, step_id: str | None = None
) -> AbstractContextManager[Span]:
    """The span of one tool call through the executor: ``execute_tool <tool>``."""
    return span(
        f"execute_tool {tool}",
        {
            GEN_AI_OPERATION_NAME: "execute_tool",
            GEN_AI_TOOL_NAME: tool,
            GEN_AI_TOOL_TYPE: "function",
            GEN_AI_TOOL_CALL_ID: call_id,
            RUN_ID: run_id,
            STEP_ID: step_id,
        },
    )


def set_tool_step(current: Span, *, step_id: str, idempotency_key: str | None) -> None:
    """Record the step a tool call became, once it is proposed."""
    set_attributes(current, {STEP_ID: step_id, IDEMPOTENCY_KEY: idempotency_key})


def end_tool_span(current: Span, *, outcome: str, message: str) -> None:
    """Record the executor's outcome; ``failed`` and ``invalid`` mark the span as an error."""
    set_attributes(current, {TOOL_OUTCOME: outcome})
    if outcome in _FAILED_OUTCOMES and current.is_recording():
        current.set_attribute(ERROR_TYPE, outcome)
        current.set_status(Status(StatusCode.ERROR, message[:300]))
