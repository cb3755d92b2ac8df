"""Safety counts from a run's events: what the security layers found and did.

The lab's KPI views count policy blocks and forbidden effects; these are the security
layers' own facts, counted the same way from the events, so a comparison of two defence
settings can show what each layer caught.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from agentlab.core.events import (
    DlpDetected,
    Event,
    ExfiltrationBlocked,
    InjectionDetected,
    StepRejected,
)


@dataclass(frozen=True)
class SecurityCounts:
    """How often each security layer fired in a set of events."""

    injections_detected: int = 0
    """``injection_detected`` events, flagged or quarantined."""
    injections_quarantined: int = 0
    dlp_detections: int = 0
    """Values DLP found, summed over ``dlp_detected`` events (``count``)."""
    dlp_blocked: int = 0
    """``dlp_detected`` events whose action was ``blocked``."""
    dlp_by_kind: dict[str, int] = field(default_factory=dict)
    """``dlp_detected`` events by kind found (an event with two kinds counts for both)."""
    exfiltrations_blocked: int = 0
    policy_blocks: int = 0
    """Steps policy refused (``step_rejected`` by policy), whatever the rule."""

    @property
    def total(self) -> int:
        """Every finding above: detections, masked or blocked data, refused steps."""
        return (
            self.injections_detected
            + self.dlp_detections
            + self.exfiltrations_blocked
            + self.policy_blocks
        )


def security_counts(events: Iterable[Event]) -> SecurityCounts:
    """Count the security layers' findings in ``events`` (one run's, or many runs')."""
    injections = quarantined = dlp = dlp_blocked = exfiltrations = blocks = 0
    by_kind: Counter[str] = Counter()
    for event in events:
        if isinstance(event, InjectionDetected):
            injections += 1
            quarantined += event.action == "quarantined"
        elif isinstance(event, DlpDetected):
            dlp += event.count
            dlp_blocked += event.action == "blocked"
            by_kind.update(event.kinds)
        elif isinstance(event, ExfiltrationBlocked):
            exfiltrations += 1
        elif isinstance(event, StepRejected) and event.rejected_by == "policy":
            blocks += 1
    return SecurityCounts(
        injections_detected=injections,
        injections_quarantined=quarantined,
        dlp_detections=dlp,
        dlp_blocked=dlp_blocked,
        dlp_by_kind=dict(sorted(by_kind.items())),
        exfiltrations_blocked=exfiltrations,
        policy_blocks=blocks,
    )
