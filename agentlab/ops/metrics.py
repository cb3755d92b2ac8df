"""The article's KPIs as Prometheus metrics, and as numbers over a window of runs.

Each finished run is summarised once as a :class:`RunSample` (the gateway builds it from the
run's events) and observed by :class:`AgentMetrics`, which keeps the counters and the latency
histogram the Grafana dashboard (``dashboards/grafana/agentlab.json``) reads:

=================================================  ===========================================
metric                                             what it counts
=================================================  ===========================================
``agentlab_runs_total{config,use_case,model,status}``  finished runs; ``status`` is ``succeeded``,
                                                   ``failed`` or ``cancelled``
``agentlab_runs_reworked_total{config,use_case}``  runs where a person rejected or edited an
                                                   action before it was committed (rework)
``agentlab_runs_degraded_total{use_case,slo}``     runs handed to the fallbacks at once because
                                                   an SLO's error budget was spent
``agentlab_tool_calls_total{tool,outcome}``        tool calls by the executor's outcome
                                                   (``ok``, ``failed``, ``blocked`` ...)
``agentlab_safety_violations_total{use_case,rule}``  policy blocks, by the rule that blocked
``agentlab_cost_usd_total{config,use_case,model}``  model cost of finished runs
``agentlab_model_tokens_total{model,type}``        tokens, ``type`` ``input`` or ``output``
``agentlab_run_duration_seconds{config,use_case}``  histogram of run latency (waits for a
                                                   person excluded)
``agentlab_runs_in_progress``                      runs working now
``agentlab_approvals_pending``                     steps waiting for a person
``agentlab_slo_*{slo,kpi,use_case}``               each SLO's objective, value, error budget
                                                   remaining and burn rate (see ``slo.py``)
=================================================  ===========================================

:func:`kpis_of` computes the same KPIs over a list of samples, by the names
:func:`agentlab.ops.evaluate_slos` reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from agentlab.ops.slo import SLOStatus

LATENCY_BUCKETS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Buckets of the run latency histogram: around the article's P50 1.8-7.9 s, P95 4.9-24.5 s."""

FAILED_TOOL_OUTCOMES = frozenset({"failed", "invalid"})
"""Tool outcomes that count as tool failures: the system kept failing, or the call was
malformed. Blocked and rejected calls are policy and people working, not failures."""


@dataclass(frozen=True)
class RunSample:
    """One finished run, summarised for metrics and SLOs."""

    run_id: str
    config: str
    use_case: str
    model: str
    status: str
    """``succeeded``, ``failed`` or ``cancelled``."""
    finished_at: datetime
    latency_s: float
    """Wall time from start to finish, less the time spent waiting for a person."""
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    is_reworked: bool = False
    """A person rejected or edited one of the run's actions before it was committed."""
    tool_outcomes: tuple[tuple[str, str], ...] = ()
    """(tool, outcome) per tool call, in order."""
    policy_blocks: tuple[str, ...] = ()
    """The rule of each policy block (``scope``, ``allowlist``, ``daily_cap`` ...)."""
    degraded_by: str | None = None
    """The SLO whose spent error budget sent the run straight to the fallbacks."""

    @property
    def is_success(self) -> bool:
        """True when the run succeeded."""
        return self.status == "succeeded"


def kpis_of(samples: Sequence[RunSample]) -> dict[str, float]:
    """The KPIs of a window of runs, by the names SLOs use.

    ``runs`` (how many), ``success_rate``, ``rework_rate``, ``tool_failure_rate``,
    ``p50_latency_s``, ``p95_latency_s``, ``cost_per_run_usd``, ``tool_calls_per_run`` and
    ``safety_violations`` (a count). Runs sent straight to the fallbacks by a spent budget
    are left out: they say nothing about the agent, and counting them as failures would keep
    the budget spent for ever. A KPI that needs at least one run (or one tool call) is
    missing when there is none.
    """
    judged = [s for s in samples if s.degraded_by is None]
    kpis: dict[str, float] = {"runs": float(len(judged))}
    violations = sum(len(s.policy_blocks) for s in judged)
    kpis["safety_violations"] = float(violations)
    if not judged:
        return kpis
    count = len(judged)
    kpis["success_rate"] = sum(s.is_success for s in judged) / count
    kpis["rework_rate"] = sum(s.is_reworked for s in judged) / count
    kpis["cost_per_run_usd"] = sum(s.cost_usd for s in judged) / count
    latencies = sorted(s.latency_s for s in judged)
    kpis["p50_latency_s"] = percentile(latencies, 50)
    kpis["p95_latency_s"] = percentile(latencies, 95)
    outcomes = [outcome for s in judged for _, outcome in s.tool_outcomes]
    kpis["tool_calls_per_run"] = len(outcomes) / count
    if outcomes:
        failed = sum(outcome in FAILED_TOOL_OUTCOMES for outcome in outcomes)
        kpis["tool_failure_rate"] = failed / len(outcomes)
    return kpis


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of sorted values, interpolated linearly (numpy's default)."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class AgentMetrics:
    """The KPIs as Prometheus metrics, in a registry of their own.

    Args:
        registry: Where the metrics are registered; a new one by default, so that two
            gateways in one process (tests) do not share counters.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "agentlab_runs",
            "Finished runs, by configuration, use case, model and status.",
            ["config", "use_case", "model", "status"],
            registry=r,
        )
        self.runs_reworked = Counter(
            "agentlab_runs_reworked",
            "Finished runs in which a person rejected or edited an action before commit.",
            ["config", "use_case"],
            registry=r,
        )
        self.runs_degraded = Counter(
            "agentlab_runs_degraded",
            "Runs handed to the use case's fallbacks at once because an SLO budget was spent.",
            ["use_case", "slo"],
            registry=r,
        )
        self.tool_calls = Counter(
            "agentlab_tool_calls",
            "Tool calls of finished runs, by tool and the executor's outcome.",
            ["tool", "outcome"],
            registry=r,
        )
        self.safety_violations = Counter(
            "agentlab_safety_violations",
            "Policy blocks of finished runs, by use case and the rule that blocked.",
            ["use_case", "rule"],
            registry=r,
        )
        self.cost = Counter(
            "agentlab_cost_usd",
            "Model cost of finished runs, in US dollars.",
            ["config", "use_case", "model"],
            registry=r,
        )
        self.tokens = Counter(
            "agentlab_model_tokens",
            "Model tokens of finished runs, by model and type (input, output).",
            ["model", "type"],
            registry=r,
        )
        self.run_duration = Histogram(
            "agentlab_run_duration_seconds",
            "Run latency: start to finish, less the time spent waiting for a person.",
            ["config", "use_case"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.runs_in_progress = Gauge(
            "agentlab_runs_in_progress", "Runs working right now.", registry=r
        )
        self.approvals_pending = Gauge(
            "agentlab_approvals_pending", "Steps waiting for a person's decision.", registry=r
        )
        slo_labels = ["slo", "kpi", "use_case"]
        self.slo_objective = Gauge(
            "agentlab_slo_objective", "Each SLO's target value.", slo_labels, registry=r
        )
        self.slo_value = Gauge(
            "agentlab_slo_value", "Each SLO's KPI over its window.", slo_labels, registry=r
        )
        self.slo_budget_remaining = Gauge(
            "agentlab_slo_error_budget_remaining",
            "Share of each SLO's error budget left over its window (1 = untouched, <= 0 spent).",
            slo_labels,
            registry=r,
        )
        self.slo_burn_rate = Gauge(
            "agentlab_slo_burn_rate",
            "How fast each SLO's budget burns now (1 = exactly spent at the window's end).",
            slo_labels,
            registry=r,
        )

    def observe_run(self, sample: RunSample) -> None:
        """Count one finished run."""
        self.runs.labels(sample.config, sample.use_case, sample.model, sample.status).inc()
        if sample.degraded_by is not None:
            self.runs_degraded.labels(sample.use_case, sample.degraded_by).inc()
        if sample.is_reworked:
            self.runs_reworked.labels(sample.config, sample.use_case).inc()
        for tool, outcome in sample.tool_outcomes:
            self.tool_calls.labels(tool, outcome).inc()
        for rule in sample.policy_blocks:
            self.safety_violations.labels(sample.use_case, rule).inc()
        self.cost.labels(sample.config, sample.use_case, sample.model).inc(sample.cost_usd)
        self.tokens.labels(sample.model, "input").inc(sample.input_tokens)
        self.tokens.labels(sample.model, "output").inc(sample.output_tokens)
        if sample.degraded_by is None:
            self.run_duration.labels(sample.config, sample.use_case).observe(sample.latency_s)

    def set_slo_statuses(self, statuses: Iterable[SLOStatus]) -> None:
        """Publish each SLO's state as gauges (replacing what was published before)."""
        for gauge in (
            self.slo_objective,
            self.slo_value,
            self.slo_budget_remaining,
            self.slo_burn_rate,
        ):
            gauge.clear()
        for status in statuses:
            labels = (status.slo.name, status.slo.kpi, status.slo.use_case or "*")
            self.slo_objective.labels(*labels).set(status.slo.target)
            if status.value is None:
                continue
            self.slo_value.labels(*labels).set(status.value)
            self.slo_budget_remaining.labels(*labels).set(status.error_budget_remaining)
            self.slo_burn_rate.labels(*labels).set(status.burn_rate)

    def track_pending(self, count: Callable[[], float]) -> None:
        """Compute ``agentlab_approvals_pending`` with ``count`` at every scrape."""
        self.approvals_pending.set_function(count)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def exposed_metric_names(metrics: AgentMetrics) -> frozenset[str]:
    """Every sample name the registry can expose (``_total``, ``_bucket`` ... included)."""
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.update({f"{family.name}_total", f"{family.name}_created"})
        elif family.type == "histogram":
            names.update(
                f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created")
            )
    return frozenset(names)
