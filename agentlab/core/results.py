"""What the lab's runner hands to the graders' readers: one :class:`RunResult` per run.

These models cross files (the metrics DuckDB, the PostgreSQL experiment log, cassette
metadata, the nightly report), so they are pydantic, and they live in ``core`` so that the
adapters that store them need not import the lab (``agentlab.lab.results`` re-exports them).
An experiment is one suite under one configuration, model, mode and code version; its
runs are the tasks times the repetitions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Mode = Literal["replay", "record", "upgrade", "live"]
MODES: tuple[Mode, ...] = ("replay", "record", "upgrade", "live")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class CheckResult(_Model):
    """One grader's verdict on one run."""

    name: str
    """``status``, ``side_effects``, ``world``, ``answer``, ``forbidden``, ``max_tool_calls``,
    ``replay`` (the run left its recording), or ``error``."""
    passed: bool
    detail: str = ""
    """Why it failed, naming the field or record that differed."""


class Divergence(_Model):
    """A request the recording does not hold, or a recorded one the run never made.

    In ``upgrade`` mode a tool request that the baseline's cassette lacks is not sent: it is
    kept here, and a write among them is a side-effect diff. In ``replay`` any divergence means
    the code or the suite changed since the recording.
    """

    kind: Literal["unrecorded", "unused"]
    """``unrecorded``: the run asked for it and the cassette has no answer; ``unused``: the
    recording holds it and this run never asked."""
    target: Literal["model", "tool", "world", "requester"]
    """``requester``: a multi-turn task's requester would now say something else."""
    method: str
    path: str
    is_write: bool
    """A request to a tool's system that writes: a commit, or the dry-run that precedes one
    (a write the recording lacks stops at its dry-run, so that is where it shows)."""
    is_dry_run: bool = False
    """The write was a dry-run (a preview of the side effect, not the side effect)."""
    summary: str
    """The tool and its arguments, or for a model call what differed from the nearest
    recorded request."""


class SideEffectRecord(_Model):
    """A committed write of the run."""

    tool: str
    arguments: dict[str, JsonValue]


class RunResult(_Model):
    """One run of one task, graded."""

    experiment_id: str
    suite: str
    config: str
    model: str
    mode: Mode
    task_id: str
    kind: str
    repetition: int = 0
    run_id: str | None = None
    status: str
    """The run's status (``succeeded``, ``failed``, ``running`` when it paused), or ``error``
    when the run could not be carried out (see ``error``)."""
    answer: str | None = None
    success: bool
    checks: tuple[CheckResult, ...] = ()
    failure_cause: str | None = None
    """The first failed check's name, or None on success."""
    latency_ms: float = Field(default=0, ge=0)
    """The run's wall time; in replay, the recorded time (the systems' and model's latencies)."""
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    """The model's tokens at its price, plus ``tool_cost_usd``."""
    tool_cost_usd: float = 0.0
    """What the run's committed tool calls are billed (the suite's ``tool_costs_usd``)."""
    tool_calls: int = 0
    external_calls: int = 0
    """Tool calls that reached a system and changed or read it (committed calls)."""
    dry_runs: int = 0
    blocked_calls: int = 0
    """Calls the policy refused (counted apart from external calls)."""
    tool_failures: int = 0
    forbidden_effects: int = 0
    injections_detected: int = 0
    """Instruction-like content the injection screen found in tool results (docs/security.md)."""
    dlp_detections: int = 0
    """Personal or secret data DLP found in the run's arguments, answer or logs."""
    exfiltrations_blocked: int = 0
    """Outgoing data or links output inspection stopped."""
    rework: bool = False
    reviews: int = 0
    side_effects: tuple[SideEffectRecord, ...] = ()
    divergences: tuple[Divergence, ...] = ()
    world_diff: dict[str, JsonValue] = Field(default_factory=dict)
    error: str | None = None
    recorded_success: bool | None = None
    """In replay and upgrade: whether the run passed when its cassette was recorded."""
    is_multi_turn: bool = False
    """The task is a conversation with a requester (``requester:`` in the suite)."""
    agent_turns: int = 0
    """A multi-turn run's agent turns; 0 for a single-shot run and for a run that could not be
    carried out (the ``kpis`` view averages it over the multi-turn runs that ran)."""
    questions_asked: int = 0
    questions_needed: int = 0
    """Questions that asked for a fact the opening text left out."""
    questions_unneeded: int = 0
    acted_on_assumption: bool = False
    """A write went ahead before a missing fact was given, or against what was said."""
    push_attempts: int = 0
    """The requester's pushes for a forbidden action: each is a safety event."""
    pushes_obeyed: int = 0
    """Pushes the agent gave in to (a forbidden effect committed after one)."""
    ended_by: str | None = None
    """How a conversation ended: ``requester``, ``gave_up``, ``max_turns`` or ``agent``."""

    @property
    def safety_violations(self) -> int:
        """Policy blocks plus forbidden effects that happened (DESIGN.md's definition)."""
        return self.blocked_calls + self.forbidden_effects

    @property
    def safety_events(self) -> int:
        """Safety violations plus the requester's attempts to push past policy."""
        return self.safety_violations + self.push_attempts

    @property
    def failed_checks(self) -> list[CheckResult]:
        """The checks that did not pass, in grading order."""
        return [check for check in self.checks if not check.passed]


class ExperimentSpec(_Model):
    """What identifies an experiment: later ones are compared against it."""

    suite: str
    config: str
    model: str
    mode: Mode
    code_version: str
    repeats: int = Field(default=1, ge=1)
    seed: int = 0
    baseline_model: str | None = None
    """In ``upgrade`` mode: whose recorded tools the model ran against."""


class Experiment(_Model):
    """An experiment as stored: its spec, when it ran, and whether it finished."""

    experiment_id: str
    spec: ExperimentSpec
    started_at: datetime
    finished_at: datetime | None = None
    label: str = ""
    """Free text: ``nightly``, a notebook's name."""
