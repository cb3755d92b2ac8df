"""Policy decisions: pure functions of the policy and a proposed call, no I/O.

The executor asks :func:`check_call` before anything reaches a system, and
:func:`approval_for` after the dry-run, when the amount is known. Stateful limits
(concurrency, daily caps) live in ``agentlab.runtime.caps``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from pydantic import JsonValue

from agentlab.policy.model import AutonomyPhase, Policy


class GovernedTool(Protocol):
    """What policy needs to know of a tool (``agentlab.tools.ToolSpec`` has it)."""

    @property
    def name(self) -> str: ...  # noqa: D102
    @property
    def scope(self) -> str: ...  # noqa: D102
    @property
    def system(self) -> str: ...  # noqa: D102
    @property
    def is_write(self) -> bool: ...  # noqa: D102
    @property
    def supports_dry_run(self) -> bool: ...  # noqa: D102


@dataclass(frozen=True)
class Verdict:
    """Policy's answer to a proposed call."""

    is_allowed: bool
    rule: str
    """Which check decided: ``actor``, ``use_case``, ``tool``, ``scope``, ``phase``,
    ``allowlist``; ``ok`` when every check passed."""
    reason: str
    may_commit: bool = False
    """For an allowed write: True when the phase allows commits (after approval)."""


def check_call(
    policy: Policy, *, actor: str, use_case: str, tool: GovernedTool, targets: Iterable[str] = ()
) -> Verdict:
    """Decide whether ``actor`` may call ``tool`` in ``use_case``, on these targets.

    Checks, in order: the actor exists and may work in the use case, the use case offers the
    tool, the actor holds its scope, the autonomy phase allows it, and every target is on the
    allowlists. With the ``least_privilege`` defence off (to measure what it is worth), only
    the actor, the use case and the phase are checked: every tool, to any target.
    """
    who = policy.actors.get(actor)
    if who is None:
        return _blocked("actor", f"actor {actor!r} is not in the policy")
    if use_case not in policy.use_cases or use_case not in who.use_cases:
        return _blocked("use_case", f"actor {actor!r} may not work in use case {use_case!r}")
    least_privilege = policy.defences.least_privilege
    if least_privilege and tool.name not in policy.use_cases[use_case].tools:
        return _blocked("tool", f"use case {use_case!r} does not offer {tool.name!r}")
    if least_privilege and tool.scope not in who.scopes:
        return _blocked("scope", f"actor {actor!r} lacks scope {tool.scope!r} for {tool.name!r}")
    phase = policy.phase_of(use_case)
    if phase is AutonomyPhase.CHAT_RAG:
        return _blocked("phase", "autonomy phase 0 allows chat and retrieval only, no tools")
    if tool.is_write and phase is AutonomyPhase.READ_ONLY:
        return _blocked("phase", f"autonomy phase 1 allows read-only tools; {tool.name} writes")
    if tool.is_write and phase is AutonomyPhase.DRY_RUN and not tool.supports_dry_run:
        return _blocked("phase", f"autonomy phase 2 runs writes as dry-runs; {tool.name} has none")
    for target in targets if least_privilege else ():
        if problem := _off_allowlist(policy, tool.system, target):
            return _blocked("allowlist", problem)
    may_commit = tool.is_write and phase >= AutonomyPhase.COMMIT
    return Verdict(True, "ok", "allowed", may_commit=may_commit)


def offered_tools(
    policy: Policy, *, actor: str, use_case: str, tools: Iterable[GovernedTool]
) -> list[str]:
    """The names of the tools the router may show the model for this actor and use case."""
    return [
        tool.name
        for tool in tools
        if check_call(policy, actor=actor, use_case=use_case, tool=tool).is_allowed
    ]


@dataclass(frozen=True)
class ApprovalRequirement:
    """Who must approve a commit, and the rule that says so."""

    approver: Literal["human", "policy"]
    rule: str


def approval_for(policy: Policy, tool: str, preview: JsonValue) -> ApprovalRequirement:
    """Who approves the commit of ``tool``, given its dry-run result.

    The first rule for the tool whose ``max_amount`` (if any) holds decides. A rule with a
    limit whose amount is missing from the preview does not apply: a policy never approves
    an amount it cannot see. With no applicable rule, a human approves.
    """
    for rule in policy.approvals:
        if rule.tool != tool:
            continue
        if rule.max_amount is not None:
            amount = preview.get(rule.amount_field) if isinstance(preview, dict) else None
            if not isinstance(amount, int | float) or amount > rule.max_amount:
                continue
        return ApprovalRequirement(rule.approver, rule.name)
    return ApprovalRequirement("human", "default_human_approval")


def domain_allowed(domain: str, allowed: Iterable[str]) -> bool:
    """True when ``domain`` is one of ``allowed`` or a subdomain of one."""
    domain = domain.lower().rstrip(".")
    return any(domain == entry or domain.endswith("." + entry) for entry in allowed)


def _off_allowlist(policy: Policy, system: str, target: str) -> str | None:
    scheme, _, rest = target.partition(":")
    if scheme == "mailto":
        domain, lists = rest.rpartition("@")[2], [policy.allowlists.email_recipient_domains]
    elif scheme in ("http", "https"):
        domain, lists = urlsplit(target).hostname or "", [policy.allowlists.browser_domains]
    else:
        return None  # a system resource (erp:, helpdesk:): scopes govern those
    limits = policy.rate_limits.tools.get(system)
    lists.append(limits.allow_domains if limits else None)
    for allowed in lists:
        if allowed is not None and not domain_allowed(domain, allowed):
            return f"{target} is off the allowlist (allowed: {', '.join(allowed)})"
    return None


def _blocked(rule: str, reason: str) -> Verdict:
    return Verdict(False, rule, reason)
