"""What the runner hands to the graders' readers: one :class:`RunResult` per run.

The models live in :mod:`agentlab.core.results`, so that the adapters (the PostgreSQL
experiment log) can read and write them without importing the lab; this module keeps the
lab's import path.
"""

from agentlab.core.results import (
    MODES,
    CheckResult,
    Divergence,
    Experiment,
    ExperimentSpec,
    Mode,
    RunResult,
    SideEffectRecord,
)

__all__ = [
    "MODES",
    "CheckResult",
    "Divergence",
    "Experiment",
    "ExperimentSpec",
    "Mode",
    "RunResult",
    "SideEffectRecord",
]
