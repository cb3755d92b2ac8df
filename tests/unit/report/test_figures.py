"""The plotly figures over the kpis view: what each trace holds."""

from __future__ import annotations

import pandas as pd
import pytest

from agentlab.lab.compare import compare
from agentlab.report import delta_figure, kpi_figure, tradeoff_figure, trend_figure
from tests.unit.report._runs import result

NIGHTS = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"], utc=True)


def kpis(night: int = 0, *, model: str = "sim-large") -> pd.DataFrame:
    rows = [
        ("multi", 7900.0, 24500.0, 0.90, 3.1, 0.041),
        ("chat_rag", 1800.0, 4900.0, 0.71, 0.0, 0.006),
        ("single", 6400.0, 22000.0, 0.84 - 0.1 * night, 2.7, 0.028),
    ]
    return pd.DataFrame(
        [
            {
                "experiment_id": f"exp-{config}-{night}",
                "config": config,
                "model": model,
                "mode": "replay",
                "started_at": NIGHTS[night],
                "p50_latency_ms": p50,
                "p95_latency_ms": p95,
                "success_rate": success,
                "avg_tool_calls": calls,
                "cost_per_run": cost,
            }
            for config, p50, p95, success, calls, cost in rows
        ]
    )


def test_kpi_bars_are_per_configuration_in_the_articles_order() -> None:
    figure = kpi_figure(kpis())

    assert [trace.type for trace in figure.data] == ["bar", "bar", "bar"]
    success, p95, cost = figure.data
    assert list(success.x) == [
        "Chat (RAG only)",
        "Single agent (Plan + Tool)",
        "Multi-agent (Planner/Verifier separated)",
    ]
    assert list(success.y) == pytest.approx([0.71, 0.84, 0.90])
    assert list(p95.y) == pytest.approx([4.9, 22.0, 24.5])  # seconds
    assert list(cost.y) == pytest.approx([0.006, 0.028, 0.041])


def test_trend_lines_follow_each_configuration_across_nights() -> None:
    history = pd.concat([kpis(n) for n in (2, 0, 1)])

    figure = trend_figure(history, metrics=("success_rate", "p95_latency_ms"))

    single = [t for t in figure.data if t.name == "Single agent (Plan + Tool)"]
    assert len(figure.data) == 3 * 2
    assert [pd.Timestamp(x, tz="UTC") for x in single[0].x] == list(NIGHTS)
    assert list(single[0].y) == pytest.approx([0.84, 0.74, 0.64])
    assert list(single[1].y) == pytest.approx([22.0] * 3)
    assert [t.showlegend for t in single] == [True, False]
    assert list(single[0].customdata) == ["exp-single-0", "exp-single-1", "exp-single-2"]


def test_trend_names_the_model_when_several_models_are_shown() -> None:
    history = pd.concat([kpis(0), kpis(0, model="sim-small")])

    names = {t.name for t in trend_figure(history).data}

    assert "Chat (RAG only) · sim-small" in names
    assert len(names) == 6


def test_an_empty_history_gives_an_empty_figure() -> None:
    assert trend_figure(kpis().iloc[0:0]).data == ()


def test_the_tradeoff_puts_success_against_p95_sized_by_cost() -> None:
    figure = tradeoff_figure(kpis())

    points = {t.name: (t.x[0], t.y[0], t.marker.size) for t in figure.data}
    assert points["Chat (RAG only)"][:2] == pytest.approx((4.9, 0.71))
    assert points["Multi-agent (Planner/Verifier separated)"][:2] == pytest.approx((24.5, 0.90))
    sizes = [points[name][2] for name in points]
    assert sizes == sorted(sizes)  # cost grows from chat to multi


def test_the_delta_figure_shows_relative_changes() -> None:
    baseline = [result(f"t{i}", cost_usd=0.01, latency_ms=1000) for i in range(10)]
    candidate = [result(f"t{i}", cost_usd=0.015, latency_ms=1000) for i in range(10)]

    (points,) = delta_figure(compare(baseline, candidate, n_boot=20)).data

    by_label = dict(zip(points.y, points.x, strict=True))
    assert by_label["cost per run"] == pytest.approx(50.0)
    assert by_label["P95 latency"] == pytest.approx(0.0)
    assert "safety violations" not in by_label  # no baseline to be relative to
