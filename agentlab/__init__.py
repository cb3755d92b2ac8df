"""agentlab: a lab bench for production LLM agents.

The names here are the notebook surface; everything else is importable from its layer.
"""

from agentlab._version import __version__ as __version__
from agentlab.adapters import open_audit_log, open_store
from agentlab.agents import Agent, StopConditions
from agentlab.core.config import load_yaml_model
from agentlab.core.errors import AgentlabError, ConfigError, PolicyViolation, ToolRejected
from agentlab.core.records import Artifact, Run, Step
from agentlab.lab import (
    arun_suite,
    benchmark_table,
    compare,
    load_suite,
    open_metrics,
    record_demo_run,
    run_nightly,
    run_suite,
)
from agentlab.lab.live import open_live_agent
from agentlab.lab.metrics import connect_metrics
from agentlab.policy import default_policy, load_policy
from agentlab.report import export_png, kpi_figure, write_nightly_report
from agentlab.runtime import ApprovalQueue, CallRequest, Executor
from agentlab.store import EventStore, RunRecorder, RunState, project_run
from agentlab.store.timeline import timeline
from agentlab.tools import builtin_tools
from agentlab.world import World, build_world_app

__all__ = [
    "Agent",
    "AgentlabError",
    "ApprovalQueue",
    "Artifact",
    "CallRequest",
    "ConfigError",
    "EventStore",
    "Executor",
    "PolicyViolation",
    "Run",
    "RunRecorder",
    "RunState",
    "Step",
    "StopConditions",
    "ToolRejected",
    "World",
    "arun_suite",
    "benchmark_table",
    "build_world_app",
    "builtin_tools",
    "compare",
    "connect_metrics",
    "default_policy",
    "export_png",
    "kpi_figure",
    "load_policy",
    "load_suite",
    "load_yaml_model",
    "open_audit_log",
    "open_live_agent",
    "open_metrics",
    "open_store",
    "project_run",
    "record_demo_run",
    "run_nightly",
    "run_suite",
    "timeline",
    "write_nightly_report",
]
