"""One line per event: the human-readable story of a run, for the CLI and notebooks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from agentlab.core.events import (
    AgentReplied,
    ArtifactRecorded,
    DlpDetected,
    Event,
    ExfiltrationBlocked,
    InjectionDetected,
    ModelCalled,
    RunFinished,
    RunResumed,
    RunStarted,
    StepApproved,
    StepCommitted,
    StepDryRunCompleted,
    StepFailed,
    StepProposed,
    StepRejected,
    StepRetried,
    UserReplied,
    Verified,
    step_id_of,
)

DETAIL_MAX_CHARS = 96


class TimelineRow(NamedTuple):
    """One event, summarised."""

    seq: int
    at: datetime
    kind: str
    step_id: str | None
    detail: str


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL_MAX_CHARS else text[: DETAIL_MAX_CHARS - 1] + "…"


def _short(value: object) -> str:
    """A JSON value on one line, clipped."""
    return _clip(json.dumps(value, sort_keys=True, default=str))


def _text(value: str) -> str:
    """Free text (a reason, a message, an answer) on one line, clipped."""
    return _clip(" ".join(value.split()))


def describe(event: Event) -> str:
    """A one-line summary of what the event says."""
    match event:
        case RunStarted(run=run):
            return f"{run.actor}: {_text(run.task)!r}" + (
                f" [{run.config}/{run.model}]" if run.config else ""
            )
        case StepProposed(step=step):
            key = f" key={step.idempotency_key}" if step.idempotency_key else ""
            return f"{step.tool}({_short(step.arguments)}) {step.side_effect.value}{key}"
        case StepDryRunCompleted(diff=diff, is_final=is_final):
            ending = "preview only, nothing committed: " if is_final else ""
            return f"{ending}would change {_short(diff)}"
        case StepApproved(approver=who, approved_by=by, edited_arguments=edited):
            return f"approved by {by} {who}" + (" with edits" if edited is not None else "")
        case StepRejected(approver=who, rejected_by=by, reason=reason):
            return f"rejected by {by} {who}: {_text(reason)}"
        case StepCommitted(result=result, latency_ms=latency_ms):
            return f"{_short(result)} in {latency_ms:.0f} ms"
        case StepFailed(error_code=code, message=message, is_retryable=retryable):
            return f"{code}: {_text(message)}" + (" (retryable)" if retryable else "")
        case StepRetried(attempt=attempt, backoff_ms=backoff_ms):
            return f"attempt {attempt} after {backoff_ms} ms"
        case ArtifactRecorded(artifact=artifact):
            return f"{artifact.kind} {artifact.artifact_id}: {_short(artifact.content)}"
        case ModelCalled(node=node, model=model, tool_calls=calls, refusal=refusal):
            sim = " (simulator)" if event.is_simulated else ""
            said = (
                f"refused: {_text(refusal)}"
                if refusal
                else (f"calls {', '.join(calls)}" if calls else "answers")
            )
            return (
                f"{node} -> {model}{sim}: {said}; {event.prompt_tokens}+{event.completion_tokens}"
                f" tokens, ${event.cost_usd:.4f}, {event.latency_ms:.0f} ms"
                + (f", waited {event.waited_ms:.0f} ms for budget" if event.waited_ms else "")
            )
        case Verified(verifier=verifier, passed=passed, findings=findings):
            return f"{verifier}: {'passed' if passed else 'FAILED'}" + (
                f" ({_text('; '.join(findings))})" if findings else ""
            )
        case InjectionDetected(source=source, score=score, action=action, signals=signals):
            return f"{action} instruction-like text in {source} (score {score:.2f}: " + (
                f"{', '.join(signals)})"
            )
        case DlpDetected(place=place, kinds=kinds, count=count, action=action):
            return f"{action} {count} value(s) of {', '.join(kinds)} in {place}"
        case ExfiltrationBlocked(place=place, targets=targets, reason=reason):
            return f"blocked from leaving in {place}: {', '.join(targets)} ({_text(reason)})"
        case RunResumed(reason=reason):
            return _text(reason) or "resumed"
        case AgentReplied(answer=answer, turn=turn):
            return f"turn {turn}, the agent waits for the requester: {_text(answer)}"
        case UserReplied(message=message, turn=turn, by=by):
            return f"turn {turn}, the requester ({by}): {_text(message)}"
        case RunFinished(outcome=outcome, answer=answer):
            return outcome + (f": {_text(answer)}" if answer else "")
    raise AssertionError(f"no description for {event.kind}")  # every kind is matched above


def timeline(events: Iterable[Event]) -> list[TimelineRow]:
    """The run's events as rows of (seq, at, kind, step_id, detail)."""
    return [TimelineRow(e.seq, e.at, e.kind, step_id_of(e), describe(e)) for e in events]
