"""The lab: golden-run suites, cassettes, graders, metrics, compare and nightly."""

from agentlab.lab.compare import Comparison, Regression, compare, regressions
from agentlab.lab.conversation import MultiTurnPassK, multi_turn_pass_k
from agentlab.lab.demo import DemoResult, arecord_demo_run, record_demo_run
from agentlab.lab.metrics import MetricsStore, benchmark_table, open_metrics
from agentlab.lab.nightly import NightlyOutcome, run_nightly
from agentlab.lab.results import ExperimentSpec, RunResult
from agentlab.lab.runner import SuiteRun, arun_suite, run_suite
from agentlab.lab.suite import Suite, Task, load_suite

__all__ = [
    "Comparison",
    "DemoResult",
    "ExperimentSpec",
    "MetricsStore",
    "MultiTurnPassK",
    "NightlyOutcome",
    "Regression",
    "RunResult",
    "Suite",
    "SuiteRun",
    "Task",
    "arecord_demo_run",
    "arun_suite",
    "benchmark_table",
    "compare",
    "load_suite",
    "multi_turn_pass_k",
    "open_metrics",
    "record_demo_run",
    "regressions",
    "run_nightly",
    "run_suite",
]
