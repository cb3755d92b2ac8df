"""The lab's plotly figures and the self-contained nightly HTML report."""

from agentlab.report.figures import delta_figure, kpi_figure, tradeoff_figure, trend_figure
from agentlab.report.nightly import build_nightly_report, write_nightly_report

__all__ = [
    "build_nightly_report",
    "delta_figure",
    "kpi_figure",
    "tradeoff_figure",
    "trend_figure",
    "write_nightly_report",
]
