"""Operations: OpenTelemetry traces, Prometheus metrics, and SLOs with error budgets.

``tracing`` opens spans for runs, graph nodes, model calls and tool calls (a no-op until
:func:`configure_tracing`); ``spans`` keeps them in the store and draws a run's timeline;
``metrics`` turns finished runs into Prometheus metrics and KPIs; ``slo`` declares SLOs over
those KPIs and tells how much of each error budget is left. See docs/operations.md.
"""

from agentlab.ops.metrics import AgentMetrics, RunSample, exposed_metric_names, kpis_of
from agentlab.ops.slo import (
    SLO,
    KpiName,
    SLOSet,
    SLOStatus,
    default_slos,
    evaluate_slos,
    load_slos,
    parse_slos,
)
from agentlab.ops.spans import load_spans, span_dicts, spans_frame, timeline, timeline_figure
from agentlab.ops.tracing import Tracing, configure_tracing, current_tracing, is_tracing

__all__ = [
    "SLO",
    "AgentMetrics",
    "KpiName",
    "RunSample",
    "SLOSet",
    "SLOStatus",
    "Tracing",
    "configure_tracing",
    "current_tracing",
    "default_slos",
    "evaluate_slos",
    "exposed_metric_names",
    "is_tracing",
    "kpis_of",
    "load_slos",
    "load_spans",
    "parse_slos",
    "span_dicts",
    "spans_frame",
    "timeline",
    "timeline_figure",
]
