"""The executor and what it enforces: caps, approvals, retries, fallbacks."""

from agentlab.runtime.approvals import (
    ApprovalQueue,
    ApprovalRequest,
    PendingApproval,
    QueueReviewer,
    ReviewDecision,
    Reviewer,
    ScriptedReviewer,
)
from agentlab.runtime.caps import ToolCaps, backoff_ms
from agentlab.runtime.executor import (
    UNPARSED_ARGUMENTS,
    CallRequest,
    Executor,
    OutcomeStatus,
    ToolOutcome,
)
from agentlab.runtime.fallbacks import FallbackAttempt, FallbackReport, run_fallbacks

__all__ = [
    "UNPARSED_ARGUMENTS",
    "ApprovalQueue",
    "ApprovalRequest",
    "CallRequest",
    "Executor",
    "FallbackAttempt",
    "FallbackReport",
    "OutcomeStatus",
    "PendingApproval",
    "QueueReviewer",
    "ReviewDecision",
    "Reviewer",
    "ScriptedReviewer",
    "ToolCaps",
    "ToolOutcome",
    "backoff_ms",
    "run_fallbacks",
]
