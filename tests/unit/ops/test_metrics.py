"""The KPIs as Prometheus metrics; the Grafana dashboard reads only metrics that exist."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agentlab.ops import SLO, AgentMetrics, RunSample, evaluate_slos, exposed_metric_names

DASHBOARD = Path(__file__).parents[3] / "dashboards" / "grafana" / "agentlab.json"
PROMQL_FUNCTIONS = {
    "sum",
    "rate",
    "increase",
    "histogram_quantile",
    "by",
    "without",
    "clamp_min",
    "clamp_max",
    "min",
    "max",
    "avg",
    "on",
    "or",
    "and",
    "bool",
    "vector",
    "le",
}


def finished(**fields: object) -> RunSample:
    values: dict[str, object] = {
        "run_id": "run_1",
        "config": "single",
        "use_case": "procurement",
        "model": "sim-large",
        "status": "succeeded",
        "finished_at": datetime(2026, 1, 1, tzinfo=UTC),
        "latency_s": 3.5,
        "cost_usd": 0.02,
        "input_tokens": 900,
        "output_tokens": 80,
        "tool_outcomes": (("find_supplier", "ok"), ("send_email", "blocked")),
        "policy_blocks": ("allowlist",),
        "is_reworked": True,
    }
    return RunSample(**(values | fields))  # type: ignore[arg-type]


def samples(metrics: AgentMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_a_finished_run_is_counted_in_every_kpi_metric() -> None:
    metrics = AgentMetrics()
    metrics.observe_run(finished())
    metrics.observe_run(finished(status="failed", is_reworked=False, policy_blocks=()))
    got = samples(metrics)
    run = (("config", "single"), ("model", "sim-large"), ("use_case", "procurement"))
    assert got[("agentlab_runs_total", tuple(sorted((*run, ("status", "succeeded")))))] == 1
    assert got[("agentlab_runs_total", tuple(sorted((*run, ("status", "failed")))))] == 1
    assert (
        got[("agentlab_runs_reworked_total", (("config", "single"), ("use_case", "procurement")))]
        == 1
    )
    assert got[("agentlab_tool_calls_total", (("outcome", "blocked"), ("tool", "send_email")))] == 2
    assert (
        got[
            (
                "agentlab_safety_violations_total",
                (("rule", "allowlist"), ("use_case", "procurement")),
            )
        ]
        == 1
    )
    assert abs(got[("agentlab_cost_usd_total", run)] - 0.04) < 1e-12
    assert got[("agentlab_model_tokens_total", (("model", "sim-large"), ("type", "input")))] == 1800
    latency = (("config", "single"), ("use_case", "procurement"))
    assert got[("agentlab_run_duration_seconds_count", latency)] == 2
    assert (
        got[("agentlab_run_duration_seconds_bucket", tuple(sorted((*latency, ("le", "5.0")))))] == 2
    )


def test_slo_statuses_become_gauges() -> None:
    metrics = AgentMetrics()
    slo = SLO(name="success", kpi="success_rate", target=0.9, min_runs=0)
    metrics.set_slo_statuses(evaluate_slos({"success_rate": 0.8, "runs": 10}, [slo]))
    metrics.track_pending(lambda: 3)
    got = samples(metrics)
    labels = (("kpi", "success_rate"), ("slo", "success"), ("use_case", "*"))
    assert got[("agentlab_slo_objective", labels)] == 0.9
    assert abs(got[("agentlab_slo_error_budget_remaining", labels)] + 1.0) < 1e-9
    assert abs(got[("agentlab_slo_burn_rate", labels)] - 2.0) < 1e-9
    assert got[("agentlab_approvals_pending", ())] == 3


def promql_metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    grouped = set(re.findall(r"\b(?:by|without|on)\s*\(([^)]*)\)", without_ranges))
    labels = {label.strip() for group in grouped for label in group.split(",")}
    return {n for n in names if n not in PROMQL_FUNCTIONS and n not in labels}


def test_every_dashboard_panel_queries_metrics_the_exporter_exposes() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exposed = exposed_metric_names(AgentMetrics())
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    titles = " ".join(p["title"].lower() for p in panels)
    for kpi in ("success", "rework", "cost", "tool failure", "safety", "p50", "p95", "burn"):
        assert kpi in titles, f"no panel about {kpi}"
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = promql_metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= exposed, (panel["title"], names - exposed)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            [metric] = re.findall(r"label_values\((\w+),", variable["definition"])
            assert metric in exposed, variable["name"]
