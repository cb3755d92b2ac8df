"""The article's benchmark table, from the ``kpis`` view.

The article (section 6.2) compares three configurations of an internal help desk agent by
P50 and P95 latency, success rate, average tool calls and estimated cost per run. This is
that table, one row per experiment, with the configurations named as the article names them.
"""

from __future__ import annotations

import math

import pandas as pd

BENCHMARK_COLUMNS: tuple[str, ...] = (
    "configuration",
    "P50",
    "P95",
    "success rate",
    "average tool calls",
    "cost per run",
)
"""The article's columns; P50 and P95 in seconds, success rate from 0 to 1, cost in USD."""

CONFIG_LABELS: dict[str, str] = {
    "chat_rag": "Chat (RAG only)",
    "single": "Single agent (Plan + Tool)",
    "multi": "Multi-agent (Planner/Verifier separated)",
}
"""How the article names the configurations; the order is the article's row order."""


def config_label(config: str) -> str:
    """The article's name of a configuration, or the configuration as it is."""
    return CONFIG_LABELS.get(config, config)


def benchmark_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """The article's benchmark table: one row per experiment of ``kpis``, in the article's order.

    Args:
        kpis: Rows of the ``kpis`` view (``MetricsStore.kpis()``).

    Returns:
        A DataFrame with exactly :data:`BENCHMARK_COLUMNS`. When the rows hold more than one
        model (or mode), the configuration's name says which, e.g. ``Chat (RAG only) [sim-small]``.
    """
    if kpis.empty:
        return pd.DataFrame({name: [] for name in BENCHMARK_COLUMNS})
    order = {config: i for i, config in enumerate(CONFIG_LABELS)}
    rows = kpis.assign(
        _order=kpis["config"].map(lambda c: order.get(c, len(order))),
    ).sort_values(["_order", "config", "model", "mode", "started_at"], kind="stable")
    show_model = rows["model"].nunique() > 1
    show_mode = rows["mode"].nunique() > 1

    def name(row: pd.Series) -> str:
        extra = [str(row["model"])] * show_model + [str(row["mode"])] * show_mode
        label = config_label(str(row["config"]))
        return f"{label} [{', '.join(extra)}]" if extra else label

    table = pd.DataFrame(
        {
            "configuration": [name(row) for _, row in rows.iterrows()],
            "P50": (rows["p50_latency_ms"] / 1000).to_numpy(),
            "P95": (rows["p95_latency_ms"] / 1000).to_numpy(),
            "success rate": rows["success_rate"].to_numpy(),
            "average tool calls": rows["avg_tool_calls"].to_numpy(),
            "cost per run": rows["cost_per_run"].to_numpy(),
        }
    )
    return table.reset_index(drop=True)


def format_seconds(value: float | None) -> str:
    """``1.8s``; ``-`` when unknown."""
    return "-" if _missing(value) else f"{value:.1f}s"


def format_rate(value: float | None) -> str:
    """``71%``; ``-`` when unknown."""
    return "-" if _missing(value) else f"{100 * value:.0f}%"


def format_usd(value: float | None) -> str:
    """``$0.006``; small costs keep two significant digits (``$0.00042``)."""
    if value is None or _missing(value):
        return "-"
    if 0 < abs(value) < 0.0005:
        return f"${value:.2g}"
    return f"${value:.3f}"


def format_number(value: float | None, digits: int = 1) -> str:
    """``2.7``; ``-`` when unknown."""
    return "-" if _missing(value) else f"{value:.{digits}f}"


def format_benchmark_table(table: pd.DataFrame) -> str:
    """The benchmark table as aligned plain text for a terminal, as the article prints it."""
    formats = {
        "configuration": str,
        "P50": format_seconds,
        "P95": format_seconds,
        "success rate": format_rate,
        "average tool calls": format_number,
        "cost per run": format_usd,
    }
    cells = [list(BENCHMARK_COLUMNS)] + [
        [formats[column](row[column]) for column in BENCHMARK_COLUMNS]
        for _, row in table.iterrows()
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(BENCHMARK_COLUMNS))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
