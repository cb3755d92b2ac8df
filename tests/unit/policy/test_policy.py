"""The policy file and its decisions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError
from agentlab.policy import (
    AutonomyPhase,
    RateLimits,
    approval_for,
    check_call,
    default_policy,
    domain_allowed,
    load_policy,
    offered_tools,
    parse_policy,
)
from agentlab.tools import builtin_tools
from tests.article import ARTICLE_RATE_LIMITS

MINIMAL = """\
phase: {phase}
actors:
  alice: {{scopes: [erp:read, erp:write, mail:send], use_cases: [procurement]}}
use_cases:
  procurement: {{tools: [find_supplier, create_purchase_order, send_email]}}
"""


@dataclass(frozen=True)
class FakeTool:
    name: str
    scope: str
    system: str
    is_write: bool
    supports_dry_run: bool = True


FIND = FakeTool("find_supplier", "erp:read", "erp_api", is_write=False)
ORDER = FakeTool("create_purchase_order", "erp:write", "erp_api", is_write=True)
MAIL = FakeTool("send_email", "mail:send", "email_send", is_write=True)


def policy_at(phase: int, extra: str = ""):
    return parse_policy(MINIMAL.format(phase=phase) + extra)


def test_the_articles_rate_limits_are_accepted_verbatim() -> None:
    policy = policy_at(3, ARTICLE_RATE_LIMITS)
    limits = policy.rate_limits
    assert isinstance(limits, RateLimits)
    assert limits.llm is not None
    assert (limits.llm.provider, limits.llm.requests_per_minute) == ("openai", 300)
    assert limits.llm.tokens_per_minute == 200000
    erp = limits.tools["erp_api"]
    assert erp.concurrency == 5
    assert erp.retry is not None
    assert (erp.retry.max_attempts, erp.retry.backoff_ms) == (3, (200, 800, 2000))
    mail = limits.tools["email_send"]
    assert (mail.concurrency, mail.daily_cap, mail.allow_domains) == (20, 2000, ("example.co.jp",))


def test_the_default_policy_loads_and_carries_the_articles_limits() -> None:
    policy = default_policy()
    assert policy.phase is AutonomyPhase.COMMIT
    article = policy_at(3, ARTICLE_RATE_LIMITS).rate_limits
    assert policy.rate_limits.llm == article.llm
    added = {"browser"}  # the article's 4.3 browser baseline: at most 20 actions per run
    assert {k: v for k, v in policy.rate_limits.tools.items() if k not in added} == article.tools
    assert policy.rate_limits.tools["browser"].per_run_cap == 20


def test_a_wrong_field_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        MINIMAL.format(phase=3) + ARTICLE_RATE_LIMITS.replace("concurrency: 5", "concurrency: -5")
    )
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    message = str(caught.value)
    line = ARTICLE_RATE_LIMITS.splitlines().index("      concurrency: 5") + 1 + 5
    assert f"{path}:{line}:" in message
    assert "rateLimits.tools.erp_api.concurrency" in message


def test_an_unknown_phase_is_refused() -> None:
    with pytest.raises(ConfigError, match="phase"):
        policy_at(7)


def test_an_actor_naming_an_undefined_use_case_is_refused() -> None:
    text = MINIMAL.format(phase=3).replace("use_cases: [procurement]", "use_cases: [payroll]")
    with pytest.raises(ConfigError, match="'payroll', which is not defined"):
        parse_policy(text)


def test_a_use_case_cannot_raise_the_phase() -> None:
    text = MINIMAL.format(phase=2).replace(
        "{tools: [find_supplier", "{phase: 3, tools: [find_supplier"
    )
    with pytest.raises(ConfigError, match="a use case may only lower it"):
        parse_policy(text)


@pytest.mark.parametrize(
    ("phase", "tool", "allowed", "may_commit"),
    [
        (0, FIND, False, False),
        (1, FIND, True, False),
        (1, ORDER, False, False),
        (2, ORDER, True, False),
        (3, ORDER, True, True),
        (4, ORDER, True, True),
    ],
)
def test_each_phase_allows_what_the_article_says(
    phase: int, tool: FakeTool, allowed: bool, may_commit: bool
) -> None:
    verdict = check_call(policy_at(phase), actor="alice", use_case="procurement", tool=tool)
    assert (verdict.is_allowed, verdict.may_commit) == (allowed, may_commit)
    if not allowed:
        assert verdict.rule == "phase"


def test_a_write_that_cannot_preview_is_blocked_in_phase_2() -> None:
    blind = FakeTool("create_purchase_order", "erp:write", "erp_api", True, supports_dry_run=False)
    verdict = check_call(policy_at(2), actor="alice", use_case="procurement", tool=blind)
    assert (verdict.is_allowed, verdict.rule) == (False, "phase")


def test_scopes_use_cases_and_actors_are_checked() -> None:
    policy = policy_at(3)
    no_scope = FakeTool("send_email", "mail:admin", "email_send", True)
    assert check_call(policy, actor="alice", use_case="procurement", tool=no_scope).rule == "scope"
    other = FakeTool("search_kb", "kb:read", "kb_api", False)
    assert check_call(policy, actor="alice", use_case="procurement", tool=other).rule == "tool"
    assert check_call(policy, actor="mallory", use_case="procurement", tool=FIND).rule == "actor"
    assert check_call(policy, actor="alice", use_case="payroll", tool=FIND).rule == "use_case"


def test_mail_off_either_allowlist_is_blocked() -> None:
    policy = policy_at(
        3,
        "allowlists: {email_recipient_domains: [example.co.jp, example.com]}\n"
        + ARTICLE_RATE_LIMITS,
    )

    def verdict(*targets: str):
        return check_call(policy, actor="alice", use_case="procurement", tool=MAIL, targets=targets)

    assert verdict("mailto:a@example.co.jp", "mailto:b@sales.example.co.jp").is_allowed
    # example.com is on the policy's list but not on email_send's allow_domains
    blocked = verdict("mailto:a@example.co.jp", "mailto:c@example.com")
    assert (blocked.is_allowed, blocked.rule) == (False, "allowlist")
    assert "mailto:c@example.com" in blocked.reason
    assert not verdict("mailto:x@evil-example.co.jp").is_allowed


def test_domain_matching_is_by_label_not_by_suffix() -> None:
    assert domain_allowed("example.co.jp", ["example.co.jp"])
    assert domain_allowed("Mail.Example.co.jp.", ["example.co.jp"])
    assert not domain_allowed("badexample.co.jp", ["example.co.jp"])
    assert not domain_allowed("example.co.jp.evil.com", ["example.co.jp"])


def test_approval_by_amount_falls_through_to_a_human() -> None:
    policy = default_policy()
    assert approval_for(policy, "create_purchase_order", {"total_usd": 5000}).approver == "policy"
    above = approval_for(policy, "create_purchase_order", {"total_usd": 5000.01})
    assert (above.approver, above.rule) == ("human", "po_above_5000_usd")
    # an amount the policy cannot see is never approved by the policy
    assert approval_for(policy, "create_purchase_order", {"lines": []}).approver == "human"
    assert approval_for(policy, "unlisted_tool", {}).approver == "human"


def test_the_router_offers_only_what_scope_use_case_and_phase_allow() -> None:
    policy = default_policy()
    tools = builtin_tools()
    assert offered_tools(policy, actor="bob", use_case="helpdesk", tools=tools) == [
        "search_tickets",
        "create_ticket",
        "add_ticket_comment",
        "set_ticket_status",
        "search_kb",
    ]
    assert offered_tools(policy, actor="guest", use_case="helpdesk", tools=tools) == ["search_kb"]


def test_default_policy_names_only_builtin_tools() -> None:
    policy = default_policy()
    names = set(builtin_tools().names())
    for use_case in policy.use_cases.values():
        assert set(use_case.tools) <= names
    assert {rule.tool for rule in policy.approvals} <= names


def test_a_fallback_needs_its_tool_in_the_use_case() -> None:
    text = MINIMAL.format(phase=3).replace(
        "{tools: [find_supplier", "{fallbacks: [{kind: ticket}], tools: [find_supplier"
    )
    with pytest.raises(ConfigError, match="runs 'create_ticket': add it"):
        parse_policy(text)
