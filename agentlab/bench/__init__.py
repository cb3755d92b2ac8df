"""Benchmarks that run inside agentlab: the injection-defence matrix and AgentDojo's suites.

Both sit above the lab (they drive agents through ``agentlab.lab``'s live runs and grade
with its graders or with AgentDojo's own checks) and below the CLI.
"""

from agentlab.bench.injection import (
    DEFENCE_SETTINGS,
    INJECTION_SUITE,
    InjectionRun,
    SettingResult,
    arun_injection_matrix,
    defence_settings,
    format_matrix,
    load_bench_suite,
    run_injection_matrix,
)

__all__ = [
    "DEFENCE_SETTINGS",
    "INJECTION_SUITE",
    "InjectionRun",
    "SettingResult",
    "arun_injection_matrix",
    "defence_settings",
    "format_matrix",
    "load_bench_suite",
    "run_injection_matrix",
]
