"""The suite's scripted reviewer: the human in the loop, played by rules.

The first rule whose tool and argument pattern match a request decides: approve, reject, or
approve with edits. Rejections and edits count as rework in the metrics, as a person's would.
"""

from __future__ import annotations

from agentlab.lab.matchers import matches
from agentlab.lab.suite import ReviewerScript
from agentlab.runtime import ApprovalRequest, ReviewDecision, ScriptedReviewer

REVIEWER = "suite-reviewer"
"""The name the scripted reviewer's decisions are recorded under."""


def suite_reviewer(script: ReviewerScript) -> ScriptedReviewer:
    """A reviewer that answers every approval request by ``script``'s rules."""

    def decide(request: ApprovalRequest) -> ReviewDecision:
        for rule in script.rules:
            if rule.tool == request.tool and matches(rule.args, request.arguments):
                if rule.decision == "reject":
                    return ReviewDecision.reject(REVIEWER, rule.reason)
                edited = {**request.arguments, **rule.edit} if rule.edit else None
                return ReviewDecision.approve(REVIEWER, reason=rule.reason, edited_arguments=edited)
        if script.default == "reject":
            return ReviewDecision.reject(REVIEWER, "the suite's reviewer rejects by default")
        return ReviewDecision.approve(REVIEWER, reason="the suite's reviewer approves by default")

    return ScriptedReviewer(decide)
