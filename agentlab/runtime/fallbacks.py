"""Fallbacks: what a use case does, in order, when its run fails (the article's 9.3).

"If an agent fails and you only hand it to a human, operations will eventually clog." The
policy lists per use case an order such as: (1) an existing RPA flow, (2) a chat-only answer
as a stopgap, (3) a ticket. Each step goes through the executor like any other call, so
policy, approval and idempotency hold for fallbacks too. Every attempt is recorded as a
``fallback`` artifact in the run and a ``fallback`` record in the audit log.

The chain stops at the first fallback that takes the work over (the RPA flow succeeds, or
the ticket is opened). A chat answer never takes the work over -- it tells the requester
what happened -- so the chain goes on after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import JsonValue

from agentlab.policy import ChatAnswerFallback, Fallback, RpaFallback, TicketFallback
from agentlab.runtime.executor import CallRequest, Executor, ToolOutcome
from agentlab.store import RunRecorder
from agentlab.store.audit import AuditEntry

PLACEHOLDER_KEY = "fallback-key-set-by-executor"
"""Write tools require an idempotency_key argument; the executor replaces it (see tools)."""


@dataclass(frozen=True)
class FallbackAttempt:
    """One fallback tried, and how it went."""

    kind: Literal["rpa", "chat_answer", "ticket"]
    status: str
    """The tool outcome's status (``ok``, ``blocked``...), or ``answered`` for a chat answer."""
    detail: str
    has_taken_over: bool


@dataclass(frozen=True)
class FallbackReport:
    """What the fallbacks did for a failed run."""

    attempts: tuple[FallbackAttempt, ...] = ()
    answer: str | None = None
    """The chat answer given to the requester, if the chain had one."""
    taken_over_by: Literal["rpa", "ticket"] | None = None
    """The fallback that took the work over; None if none did."""
    outcomes: tuple[ToolOutcome, ...] = field(default=(), repr=False)


def default_chat_answer(task: str, failure: str) -> str:
    """A stopgap answer that says what happened and that nothing was changed by the agent."""
    return (
        f"I could not complete this automatically: {failure}. "
        f"Your request ({task!r}) has been passed on; nothing was changed on your behalf."
    )


async def run_fallbacks(
    executor: Executor,
    recorder: RunRecorder,
    request: CallRequest,
    *,
    failure: str,
    rpa_inputs: Mapping[str, JsonValue] | None = None,
    chat_answer: Callable[[str, str], str] = default_chat_answer,
) -> FallbackReport:
    """Follow the use case's fallbacks, in order, after a run failed.

    Args:
        executor: Runs the RPA flow and the ticket, under policy like any call.
        recorder: The failed run's recorder; attempts are recorded in the run.
        request: The run's actor and use case; the use case names the fallbacks.
        failure: Why the run failed, in a sentence; goes into the answer and the ticket.
        rpa_inputs: The inputs for an RPA fallback (the task's structured fields).
        chat_answer: Writes the stopgap answer from the task and the failure.
    """
    fallbacks = executor.policy.use_cases[request.use_case].fallbacks
    attempts: list[FallbackAttempt] = []
    outcomes: list[ToolOutcome] = []
    answer = None
    for fallback in fallbacks:
        attempt, outcome, text = await _try(
            fallback,
            executor=executor,
            recorder=recorder,
            request=request,
            failure=failure,
            rpa_inputs=rpa_inputs or {},
            chat_answer=chat_answer,
        )
        attempts.append(attempt)
        if outcome is not None:
            outcomes.append(outcome)
        answer = text or answer
        recorder.artifact(
            "fallback",
            {
                "kind": attempt.kind,
                "status": attempt.status,
                "detail": attempt.detail,
                "has_taken_over": attempt.has_taken_over,
            },
        )
        executor.audit.append(
            AuditEntry(
                at=executor.clock.now(),
                run_id=recorder.run_id,
                step_id=outcome.step_id if outcome else None,
                actor=request.actor,
                decision="fallback",
                tool=outcome.tool if outcome else None,
                arguments=None,
                result={"kind": attempt.kind, "status": attempt.status},
                idempotency_key=None,
                latency_ms=None,
                reason=attempt.detail,
            )
        )
        if attempt.has_taken_over:
            return FallbackReport(tuple(attempts), answer, attempt.kind, tuple(outcomes))  # type: ignore[arg-type]
    return FallbackReport(tuple(attempts), answer, None, tuple(outcomes))


async def _try(
    fallback: Fallback,
    *,
    executor: Executor,
    recorder: RunRecorder,
    request: CallRequest,
    failure: str,
    rpa_inputs: Mapping[str, JsonValue],
    chat_answer: Callable[[str, str], str],
) -> tuple[FallbackAttempt, ToolOutcome | None, str | None]:
    task = recorder.run.task
    match fallback:
        case ChatAnswerFallback():
            text = chat_answer(task, failure)
            return FallbackAttempt("chat_answer", "answered", text, False), None, text
        case RpaFallback(workflow=workflow, version=version):
            outcome = await executor.call(
                recorder,
                request,
                "run_rpa_workflow",
                {
                    "workflow": workflow,
                    "version": version,
                    "inputs": [{"name": k, "value": v} for k, v in rpa_inputs.items()],
                    "dry_run": False,
                    "idempotency_key": PLACEHOLDER_KEY,
                },
            )
            succeeded = outcome.is_done and _rpa_status(outcome.content) == "succeeded"
            return FallbackAttempt("rpa", outcome.status, outcome.message, succeeded), outcome, None
        case TicketFallback(priority=priority, requester=requester):
            outcome = await executor.call(
                recorder,
                request,
                "create_ticket",
                {
                    "title": f"Agent could not finish: {task}"[:120],
                    "body": f"Task: {task}\nWhy it failed: {failure}"[:4000],
                    "requester": requester,
                    "priority": priority,
                    "dry_run": False,
                    "idempotency_key": PLACEHOLDER_KEY,
                },
            )
            return (
                FallbackAttempt("ticket", outcome.status, outcome.message, outcome.is_done),
                outcome,
                None,
            )
    raise AssertionError(f"unknown fallback {fallback!r}")  # pragma: no cover - exhaustive


def _rpa_status(content: JsonValue) -> str | None:
    if isinstance(content, dict) and isinstance(content.get("result"), dict):
        status = content["result"].get("status")
        return status if isinstance(status, str) else None
    return None
