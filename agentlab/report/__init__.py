"""The lab's plotly figures, the self-contained nightly HTML report, and PNG export."""

from agentlab.report.export import export_png
from agentlab.report.figures import (
    delta_figure,
    failures_figure,
    kpi_figure,
    safety_figure,
    timeline_figure,
    tradeoff_ci_figure,
    tradeoff_figure,
    trend_figure,
)
from agentlab.report.nightly import build_nightly_report, write_nightly_report

__all__ = [
    "build_nightly_report",
    "delta_figure",
    "export_png",
    "failures_figure",
    "kpi_figure",
    "safety_figure",
    "timeline_figure",
    "tradeoff_ci_figure",
    "tradeoff_figure",
    "trend_figure",
    "write_nightly_report",
]
