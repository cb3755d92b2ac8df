"""A finished run's events, summarised as a :class:`~agentlab.ops.RunSample` for metrics."""

from __future__ import annotations

from collections.abc import Sequence

from agentlab.core.events import (
    Event,
    RunStarted,
    StepApproved,
    StepDryRunCompleted,
    StepRejected,
)
from agentlab.ops import RunSample
from agentlab.store import RunState, StepState, project_run

INVALID_CODES = frozenset({"invalid_arguments", "unknown_tool", "invalid_edited_arguments"})


def run_sample(
    events: Sequence[Event], *, use_case: str, degraded_by: str | None = None
) -> RunSample | None:
    """The run's sample, or None while it has not finished.

    Latency is the wall time from ``run_started`` to ``run_finished`` less the time each step
    waited for a person (from its dry-run to the person's decision): an approval that takes
    a day says nothing about the agent.
    """
    state = project_run(events)
    if not state.is_finished or state.finished_at is None:
        return None
    first = events[0]
    assert isinstance(first, RunStarted)  # project_run checked it
    waited_s = _waited_for_people_s(events)
    latency_s = (state.finished_at - first.at).total_seconds() - waited_s
    return RunSample(
        run_id=state.run.run_id,
        config=state.run.config or "none",
        use_case=use_case,
        model=state.run.model or "none",
        status=state.status,
        finished_at=state.finished_at,
        latency_s=max(latency_s, 0.0),
        cost_usd=sum(call.cost_usd for call in state.model_calls),
        input_tokens=sum(call.prompt_tokens for call in state.model_calls),
        output_tokens=sum(call.completion_tokens for call in state.model_calls),
        is_reworked=any(_is_reworked(step) for step in state.steps.values()),
        tool_outcomes=tuple((s.step.tool, tool_outcome(s)) for s in state.steps.values()),
        policy_blocks=_policy_blocks(state),
        degraded_by=degraded_by,
    )


def tool_outcome(entry: StepState) -> str:
    """The executor's outcome a step ended with, read from its events."""
    decision = entry.decision
    match entry.status:
        case "committed":
            return "ok"
        case "rejected" if isinstance(decision, StepRejected):
            return "blocked" if decision.rejected_by == "policy" else "rejected"
        case "dry_run":
            return "previewed" if entry.is_preview_only else "awaiting_approval"
        case "failed" if entry.last_error is not None:
            return "invalid" if entry.last_error.error_code in INVALID_CODES else "failed"
    return "not_run"


def _is_reworked(entry: StepState) -> bool:
    """A person (not policy) rejected the step, or edited it before approving."""
    decision = entry.decision
    if isinstance(decision, StepRejected):
        return decision.rejected_by == "human"
    return isinstance(decision, StepApproved) and decision.edited_arguments is not None


def _policy_blocks(state: RunState) -> tuple[str, ...]:
    return tuple(
        s.decision.approver.removeprefix("policy:")
        for s in state.steps.values()
        if isinstance(s.decision, StepRejected) and s.decision.rejected_by == "policy"
    )


def _waited_for_people_s(events: Sequence[Event]) -> float:
    previewed = {
        e.step_id: e.at for e in events if isinstance(e, StepDryRunCompleted) and not e.is_final
    }
    waited = 0.0
    for event in events:
        is_human = (isinstance(event, StepApproved) and event.approved_by == "human") or (
            isinstance(event, StepRejected) and event.rejected_by == "human"
        )
        if is_human and event.step_id in previewed:  # type: ignore[union-attr]
            waited += (event.at - previewed[event.step_id]).total_seconds()  # type: ignore[union-attr]
    return waited
