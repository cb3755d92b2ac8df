"""The lab's metrics in DuckDB: experiments, runs, steps, events, artifacts and the KPI view.

``open_metrics()`` opens the store; ``benchmark_table`` turns its ``kpis`` into the
article's benchmark table. Definitions of every measure are in docs/metrics.md.
"""

from agentlab.lab.metrics.store import (
    DEFAULT_PATH,
    RUN_COLUMNS,
    MetricsStore,
    connect_metrics,
    open_metrics,
)
from agentlab.lab.metrics.table import (
    BENCHMARK_COLUMNS,
    CONFIG_LABELS,
    benchmark_table,
    format_benchmark_table,
)

__all__ = [
    "BENCHMARK_COLUMNS",
    "CONFIG_LABELS",
    "DEFAULT_PATH",
    "RUN_COLUMNS",
    "MetricsStore",
    "benchmark_table",
    "connect_metrics",
    "format_benchmark_table",
    "open_metrics",
]
