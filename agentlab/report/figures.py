"""Plotly figures over the ``kpis`` view and comparisons, for notebooks and the nightly report.

Each builder takes the DataFrame ``MetricsStore.kpis()`` returns (or a
:class:`~agentlab.lab.compare.Comparison`) and returns a ``plotly.graph_objects.Figure``;
nothing here reads files or the store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from agentlab.lab.compare import Comparison
from agentlab.lab.metrics.table import CONFIG_LABELS, config_label


@dataclass(frozen=True)
class _Axis:
    title: str
    scale: float
    tickformat: str


AXES: dict[str, _Axis] = {
    "success_rate": _Axis("success rate", 1, ".0%"),
    "rework_rate": _Axis("rework rate", 1, ".0%"),
    "tool_failure_rate": _Axis("tool failure rate", 1, ".0%"),
    "p50_latency_ms": _Axis("P50 latency (s)", 1 / 1000, ".1f"),
    "p95_latency_ms": _Axis("P95 latency (s)", 1 / 1000, ".1f"),
    "cost_per_run": _Axis("cost per run (USD)", 1, "$.3f"),
    "avg_tool_calls": _Axis("average tool calls", 1, ".1f"),
    "external_calls": _Axis("external calls per run", 1, ".1f"),
    "safety_violations": _Axis("safety violations", 1, "d"),
    "policy_blocks": _Axis("policy blocks", 1, "d"),
    "forbidden_effects": _Axis("forbidden effects", 1, "d"),
}
"""How each KPI column is shown: axis title, scale (ms to s), tick format."""

DEFAULT_METRICS = ("success_rate", "p95_latency_ms", "cost_per_run")
"""The article's trade-off: success against P95 latency and cost."""

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 40}}
_TALL_MARGIN = {"l": 60, "r": 20, "t": 90, "b": 40}


def series_name(row: pd.Series, *, with_model: bool) -> str:
    """A configuration's name as the article gives it, with the model when several are shown."""
    label = config_label(str(row["config"]))
    return f"{label} · {row['model']}" if with_model else label


def _ordered(kpis: pd.DataFrame) -> pd.DataFrame:
    order = {config: i for i, config in enumerate(CONFIG_LABELS)}
    keys = kpis["config"].map(lambda c: order.get(c, len(order)))
    return kpis.assign(_order=keys).sort_values(["_order", "config", "model"], kind="stable")


def kpi_figure(kpis: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS) -> go.Figure:
    """Bars of each KPI, one panel per measure, one bar per configuration (and model).

    Args:
        kpis: Rows of the ``kpis`` view, one per experiment to show.
        metrics: KPI columns to plot (see :data:`AXES`).
    """
    rows = _ordered(kpis)
    with_model = rows["model"].nunique() > 1
    names = [series_name(row, with_model=with_model) for _, row in rows.iterrows()]
    figure = make_subplots(
        rows=1, cols=len(metrics), subplot_titles=[AXES[m].title for m in metrics]
    )
    for col, metric in enumerate(metrics, start=1):
        axis = AXES[metric]
        figure.add_trace(
            go.Bar(
                x=names,
                y=rows[metric].astype(float) * axis.scale,
                name=axis.title,
                marker={"color": [_color(i) for i in range(len(names))]},
                showlegend=False,
                hovertemplate=f"%{{x}}<br>{axis.title}: %{{y:{axis.tickformat}}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        figure.update_yaxes(tickformat=axis.tickformat, row=1, col=col)
    figure.update_layout(
        title="KPIs by configuration", height=420, **(_LAYOUT | {"margin": _TALL_MARGIN})
    )
    return figure


def trend_figure(history: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS) -> go.Figure:
    """KPIs across past experiments: x is when each started, one line per configuration.

    Args:
        history: Rows of the ``kpis`` view for the past experiments (``kpis(label="nightly")``).
        metrics: KPI columns to plot, one panel each.
    """
    figure = make_subplots(
        rows=len(metrics),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[AXES[m].title for m in metrics],
        vertical_spacing=0.08,
    )
    if history.empty:
        figure.update_layout(title="KPIs over time (no history yet)", **_LAYOUT)
        return figure
    rows = _ordered(history)
    with_model = rows["model"].nunique() > 1
    for i, ((config, model), unsorted) in enumerate(rows.groupby(["config", "model"], sort=False)):
        group = unsorted.sort_values("started_at")
        name = series_name(pd.Series({"config": config, "model": model}), with_model=with_model)
        for row, metric in enumerate(metrics, start=1):
            axis = AXES[metric]
            figure.add_trace(
                go.Scatter(
                    x=group["started_at"],
                    y=group[metric].astype(float) * axis.scale,
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=row == 1,
                    line={"color": _color(i)},
                    customdata=group["experiment_id"],
                    hovertemplate=(
                        f"{name}<br>%{{x}}<br>{axis.title}: %{{y:{axis.tickformat}}}"
                        "<br>%{customdata}<extra></extra>"
                    ),
                ),
                row=row,
                col=1,
            )
            figure.update_yaxes(tickformat=axis.tickformat, row=row, col=1)
    figure.update_layout(title="KPIs over time", height=260 * len(metrics), **_LAYOUT)
    return figure


def tradeoff_figure(kpis: pd.DataFrame) -> go.Figure:
    """The article's trade-off: success rate against P95 latency, marker area by cost per run."""
    rows = _ordered(kpis)
    with_model = rows["model"].nunique() > 1
    costs = rows["cost_per_run"].astype(float).fillna(0)
    biggest = float(costs.max()) if len(costs) else 0.0
    figure = go.Figure()
    for i, (_, row) in enumerate(rows.iterrows()):
        name = series_name(row, with_model=with_model)
        cost = float(row["cost_per_run"]) if not _nan(row["cost_per_run"]) else 0.0
        figure.add_trace(
            go.Scatter(
                x=[float(row["p95_latency_ms"]) / 1000],
                y=[float(row["success_rate"])],
                mode="markers+text",
                text=[name],
                textposition="top center",
                name=name,
                marker=_cost_marker(i, cost, biggest),
                hovertemplate=_tradeoff_hover(name, cost),
            )
        )
    p95 = rows["p95_latency_ms"].astype(float).dropna() / 1000
    success = rows["success_rate"].astype(float).dropna()
    figure.update_layout(
        title="Success vs P95 latency (marker area: cost per run)",
        xaxis_title="P95 latency (s)",
        # room around the markers for their labels
        xaxis_range=[0, float(p95.max()) * 1.25 if len(p95) else 1],
        yaxis_range=[max(0.0, float(success.min()) - 0.1) if len(success) else 0, 1.08],
        yaxis_title="success rate",
        yaxis_tickformat=".0%",
        height=420,
        **_LAYOUT,
    )
    return figure


def delta_figure(comparison: Comparison) -> go.Figure:
    """Each measure's change against the baseline, relative, with its 95% interval."""
    shown = [m for m in comparison.metrics if m.baseline]
    figure = go.Figure(
        go.Scatter(
            x=[100 * m.delta / m.baseline for m in shown],
            y=[m.label for m in shown],
            mode="markers",
            marker={"size": 10, "color": ["#c0392b" if m.is_worse else "#2e86c1" for m in shown]},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [100 * (m.ci_high - m.delta) / abs(m.baseline) for m in shown],
                "arrayminus": [100 * (m.delta - m.ci_low) / abs(m.baseline) for m in shown],
            },
            hovertemplate="%{y}: %{x:+.1f}%<extra></extra>",
        )
    )
    figure.add_vline(x=0, line_dash="dot")
    figure.update_layout(
        title=f"{comparison.candidate_label} vs {comparison.baseline_label}",
        xaxis_title="change against the baseline (%), 95% bootstrap interval",
        height=120 + 32 * len(shown),
        **_LAYOUT,
    )
    return figure


_PALETTE = ("#2e86c1", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d")


def _cost_marker(i: int, cost: float, biggest: float) -> dict[str, object]:
    """A trade-off chart's marker: its area grows with the cost per run."""
    return {
        "size": 14 + (36 * math.sqrt(cost / biggest) if biggest > 0 else 0),
        "color": _color(i),
        "opacity": 0.8,
    }


def _tradeoff_hover(name: str, cost: float) -> str:
    return f"{name}<br>P95 %{{x:.1f}}s<br>success %{{y:.0%}}<br>cost ${cost:.4f}<extra></extra>"


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- figures over agentlab.lab.analysis's tables (the notebooks) ---------------------------

_LANE_COLORS = {
    "run": "#7f8c8d",
    "plan": "#2e86c1",
    "tool call": "#e67e22",
    "dry-run": "#f1c40f",
    "approval": "#27ae60",
    "verification": "#8e44ad",
    "security": "#c0392b",
}
_MIN_BAR_S = 0.15
"""Point events (a proposal, an approval) are drawn this wide so they can be seen and hovered."""


def timeline_figure(timeline: pd.DataFrame, title: str = "Run timeline") -> go.Figure:
    """A run's events on their lanes over the run's time (``analysis.run_timeline``'s frame).

    A model call or a commit is a bar as long as its latency; every other event is a short
    mark at its time. Hovering shows the event's one-line description.
    """
    lanes = [lane for lane in _LANE_COLORS if lane in set(timeline["lane"])]
    figure = go.Figure()
    for lane in lanes:
        rows = timeline[timeline["lane"] == lane]
        width = rows["duration_s"].astype(float).clip(lower=_MIN_BAR_S)
        figure.add_trace(
            go.Bar(
                y=[lane] * len(rows),
                x=width,
                base=rows["start_s"].astype(float),
                orientation="h",
                name=lane,
                marker={"color": _LANE_COLORS[lane]},
                customdata=rows[["seq", "kind", "detail"]].to_numpy(),
                hovertemplate=(
                    "#%{customdata[0]} %{customdata[1]} at %{base:.1f}s"
                    "<br>%{customdata[2]}<extra></extra>"
                ),
            )
        )
    figure.update_layout(
        title=title,
        barmode="overlay",
        xaxis_title="seconds since the run started (the run's clock)",
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(lanes))},
        height=140 + 40 * len(lanes),
        **_LAYOUT,
    )
    return figure


def failures_figure(failures: pd.DataFrame) -> go.Figure:
    """Failed runs by cause, stacked by configuration (``analysis.failures``'s frame)."""
    figure = go.Figure()
    if failures.empty:
        figure.update_layout(title="Failed runs by cause (none failed)", **_LAYOUT)
        return figure
    causes = failures["cause"].value_counts().index.tolist()
    ordered = _ordered(failures.drop_duplicates("config")[["config"]].assign(model=""))
    for i, config in enumerate(ordered["config"]):
        rows = failures[failures["config"] == config]
        counts = rows["cause"].value_counts()
        figure.add_trace(
            go.Bar(
                x=causes,
                y=[int(counts.get(c, 0)) for c in causes],
                name=config_label(config),
                marker={"color": _color(i)},
                hovertemplate=f"{config_label(config)}<br>%{{x}}: %{{y}} run(s)<extra></extra>",
            )
        )
    figure.update_layout(
        title="Failed runs by cause (the first failed check)",
        barmode="stack",
        xaxis_title="cause",
        yaxis_title="failed runs",
        height=420,
        **_LAYOUT,
    )
    return figure


def tradeoff_ci_figure(table: pd.DataFrame) -> go.Figure:
    """Success against P95 latency with 95% intervals on both, marker area by cost per run.

    Args:
        table: ``analysis.benchmark_with_ci``'s frame, one row per configuration.
    """
    costs = table["cost per run"].astype(float).fillna(0)
    biggest = float(costs.max()) if len(costs) else 0.0
    figure = go.Figure()
    for i, (_, values) in enumerate(table.iterrows()):
        name = str(values["configuration"])
        cost = float(values["cost per run"])
        figure.add_trace(
            go.Scatter(
                x=[values["P95"]],
                y=[values["success rate"]],
                mode="markers+text",
                text=[name],
                textposition="top center",
                name=name,
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [values["P95 high"] - values["P95"]],
                    "arrayminus": [values["P95"] - values["P95 low"]],
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [values["success rate high"] - values["success rate"]],
                    "arrayminus": [values["success rate"] - values["success rate low"]],
                },
                marker=_cost_marker(i, cost, biggest),
                hovertemplate=_tradeoff_hover(name, cost),
            )
        )
    top = float(table["P95 high"].max()) if len(table) else 1.0
    low = float(table["success rate low"].min()) if len(table) else 0.0
    figure.update_layout(
        title="Success vs P95 latency, 95% bootstrap intervals (marker area: cost per run)",
        xaxis_title="P95 latency (s)",
        xaxis_range=[0, top * 1.15],
        yaxis_range=[max(0.0, low - 0.1), 1.08],
        yaxis_title="success rate",
        yaxis_tickformat=".0%",
        height=460,
        **_LAYOUT,
    )
    return figure


def safety_figure(safety: pd.DataFrame) -> go.Figure:
    """Safety next to success, per configuration (``analysis.safety_table``'s frame).

    Left: what the agent attempted, what was blocked and what got through; right: the
    success rate and the share of runs that did nothing at all, since zero violations from an
    agent that does nothing is no safety.
    """
    rows = _ordered(safety)
    with_model = rows["model"].nunique() > 1
    names = [series_name(row, with_model=with_model) for _, row in rows.iterrows()]
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["attempted, blocked, got through (runs' totals)", "success and idleness"],
    )
    for column, label, color in (
        ("writes_attempted", "writes attempted", "#2e86c1"),
        ("policy_blocks", "blocked by policy", "#27ae60"),
        ("caught", "caught by the screens", "#16a085"),
        ("got_through", "got through", "#c0392b"),
        ("safety_violations", "safety violations", "#8e44ad"),
    ):
        figure.add_trace(
            go.Bar(x=names, y=rows[column], name=label, marker={"color": color}), row=1, col=1
        )
    runs = rows["runs"].astype(float).replace(0, math.nan)
    for values, label, color in (
        (rows["success_rate"].astype(float), "success rate", "#34495e"),
        (rows["idle_runs"].astype(float) / runs, "runs with no tool call", "#7f8c8d"),
    ):
        figure.add_trace(
            go.Bar(x=names, y=values, name=label, marker={"color": color}, opacity=0.8),
            row=1,
            col=2,
        )
    figure.update_yaxes(tickformat=".0%", range=[0, 1.05], row=1, col=2)
    figure.update_layout(
        title="Safety next to success (injection and privilege tasks)",
        barmode="group",
        height=440,
        **(_LAYOUT | {"margin": _TALL_MARGIN}),
    )
    return figure
