"""The article's benchmark table, from the KPI view."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from agentlab.core.clock import TickingClock
from agentlab.lab.metrics import (
    BENCHMARK_COLUMNS,
    benchmark_table,
    format_benchmark_table,
    open_metrics,
)
from tests.unit.report._runs import result, spec

# The article's table (section 6.2): P50 s, P95 s, success, tool calls, cost per run
ARTICLE = {
    "chat_rag": (1.8, 4.9, 0.71, 0.0, 0.006),
    "single": (6.4, 22.0, 0.84, 2.7, 0.028),
    "multi": (7.9, 24.5, 0.90, 3.1, 0.041),
}


def article_kpis() -> pd.DataFrame:
    rows = [
        {
            "experiment_id": f"exp-{config}",
            "config": config,
            "model": "sim-large",
            "mode": "replay",
            "started_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "p50_latency_ms": p50 * 1000,
            "p95_latency_ms": p95 * 1000,
            "success_rate": success,
            "avg_tool_calls": calls,
            "cost_per_run": cost,
        }
        for config, (p50, p95, success, calls, cost) in reversed(ARTICLE.items())
    ]
    return pd.DataFrame(rows)


def test_the_table_has_the_articles_columns_and_rows_in_its_order() -> None:
    table = benchmark_table(article_kpis())

    assert tuple(table.columns) == BENCHMARK_COLUMNS
    assert list(table["configuration"]) == [
        "Chat (RAG only)",
        "Single agent (Plan + Tool)",
        "Multi-agent (Planner/Verifier separated)",
    ]
    assert list(table["P95"]) == pytest.approx([4.9, 22.0, 24.5])
    assert list(table["success rate"]) == pytest.approx([0.71, 0.84, 0.90])


def test_the_text_table_reads_like_the_articles() -> None:
    text = format_benchmark_table(benchmark_table(article_kpis()))
    lines = text.splitlines()

    assert lines[0].split("  ")[0].strip() == "configuration"
    assert lines[0].endswith("cost per run")
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["Chat", "(RAG", "only)", "1.8s", "4.9s", "71%", "0.0", "$0.006"]
    assert lines[4].split()[-5:] == ["7.9s", "24.5s", "90%", "3.1", "$0.041"]
    assert len({len(line) for line in lines[:2]}) == 1  # the rule is as wide as the header


def test_rows_name_the_model_when_several_are_compared() -> None:
    kpis = pd.concat([article_kpis(), article_kpis().assign(model="sim-small")])

    table = benchmark_table(kpis)

    assert list(table["configuration"][:2]) == [
        "Chat (RAG only) [sim-large]",
        "Chat (RAG only) [sim-small]",
    ]


def test_the_table_comes_from_duckdb() -> None:
    clock = TickingClock(tick=timedelta(minutes=1))
    with open_metrics(":memory:", clock=clock) as metrics:
        for config, latencies in (("multi", [7000, 9000]), ("chat_rag", [1000, 3000])):
            eid = metrics.start_experiment(spec(config)).experiment_id
            for i, latency in enumerate(latencies):
                run = result(f"t{i}", experiment_id=eid, config=config, latency_ms=latency,
                             success=i == 0, tool_calls=3 * i, cost_usd=0.01 * (i + 1))  # fmt: skip
                metrics.record_run(eid, run, [])
        table = benchmark_table(metrics.kpis())

    assert table.to_dict("list") == {
        "configuration": ["Chat (RAG only)", "Multi-agent (Planner/Verifier separated)"],
        "P50": [2.0, 8.0],
        "P95": pytest.approx([2.9, 8.9]),
        "success rate": [0.5, 0.5],
        "average tool calls": [1.5, 1.5],
        "cost per run": pytest.approx([0.015, 0.015]),
    }


def test_an_empty_table_still_has_the_columns() -> None:
    table = benchmark_table(pd.DataFrame())

    assert tuple(table.columns) == BENCHMARK_COLUMNS
    assert format_benchmark_table(table).splitlines()[0].startswith("configuration")
