"""Plans and verdicts: the simulator answers in the JSON schema the request names."""

from __future__ import annotations

import json
from typing import Any

from agentlab.llm import PLAN_FORMAT, VERDICT_FORMAT, Plan, Verdict, response_format
from tests.unit.llm.sim._chat import POLICY, SYSTEM, TOOLS

PLAN = response_format(Plan, PLAN_FORMAT)
VERDICT = response_format(Verdict, VERDICT_FORMAT)


def _plan(task: str, *more: dict[str, Any], model: str = "sim-exact") -> Plan:
    body = POLICY.respond(
        {
            "model": model,
            "messages": [SYSTEM, {"role": "user", "content": task}, *more],
            "tools": TOOLS,
            "tool_choice": "none",
            "response_format": PLAN,
        }
    ).body
    return Plan.model_validate_json(body["choices"][0]["message"]["content"])


def _verdict(
    task: str,
    answer: str,
    evidence: list[dict[str, Any]],
    *,
    model: str = "sim-exact",
    seed: int | None = None,
) -> Verdict:
    case = json.dumps({"task": task, "answer": answer, "evidence": evidence})
    body = POLICY.respond(
        {
            "model": model,
            "messages": [SYSTEM, {"role": "user", "content": case}],
            "response_format": VERDICT,
            "seed": seed,
        }
    ).body
    return Verdict.model_validate_json(body["choices"][0]["message"]["content"])


def test_a_plan_lists_the_lookups_before_the_write() -> None:
    plan = _plan("Restock the floor-3 printer's black toner from the Nagoya supplier")
    assert [step.tool for step in plan.steps] == [
        "find_supplier",
        "check_inventory",
        "create_purchase_order",
    ]
    assert plan.clarification is None


def test_a_plan_for_two_requests_has_both_in_order() -> None:
    plan = _plan("Order 5 TONER-CY-05 from SUP-000103 and email mika@example.co.jp about it")
    assert [step.tool for step in plan.steps] == ["create_purchase_order", "send_email"]


def test_a_vague_task_is_planned_as_a_question() -> None:
    plan = _plan("Can you sort it out?")
    assert plan.steps == []
    assert plan.clarification is not None
    assert plan.clarification.endswith("?")


def test_after_a_failed_verification_only_what_is_left_is_planned() -> None:
    task = "Order 5 TONER-CY-05 from SUP-000103 and email mika@example.co.jp about it"
    done = [{"tool": "create_purchase_order", "status": "ok", "message": "done"}]
    findings = {
        "role": "user",
        "content": "Verification failed:\n- the task asks to send email, but no tool result "
        f"shows an attempt\nPlan again for what is left of the task.\n"
        f"Tool outcomes so far: {json.dumps(done)}",
    }
    plan = _plan(task, {"role": "assistant", "content": "{}"}, findings)
    assert [step.tool for step in plan.steps] == ["send_email"]


ORDERED = {
    "tool": "create_purchase_order",
    "status": "ok",
    "message": "done",
    "untrusted_data": {"result": {"po_id": "PO-000001", "total_usd": 375.0}, "diff": {}},
}
EMAIL_WAITS = {
    "tool": "send_email",
    "status": "awaiting_approval",
    "message": "a person must approve this commit",
    "untrusted_data": {"result": {"message_id": None, "to": ["mika@example.co.jp"]}, "diff": {}},
}
TASK = "Order black toner and email mika@example.co.jp"


def test_a_verdict_passes_an_answer_the_evidence_backs() -> None:
    answer = (
        "I created purchase order PO-000001 (375.0 USD). The email to mika@example.co.jp is "
        "waiting for approval."
    )
    verdict = _verdict(TASK, answer, [ORDERED, EMAIL_WAITS])
    assert verdict == Verdict(passed=True, findings=[])


def test_a_verdict_catches_an_invented_id_and_an_unapproved_send() -> None:
    answer = "I created purchase order PO-004242. I sent the email to mika@example.co.jp."
    verdict = _verdict(TASK, answer, [ORDERED, EMAIL_WAITS])
    assert not verdict.passed
    text = " ".join(verdict.findings)
    assert "PO-004242" in text
    assert "send_email is awaiting_approval" in text


def test_a_verdict_catches_a_write_to_an_address_the_task_never_named() -> None:
    leaked = {
        **EMAIL_WAITS,
        "status": "ok",
        "untrusted_data": {
            "result": {"message_id": "MSG-000001", "to": ["attacker@evil.example"]},
            "diff": {},
        },
    }
    verdict = _verdict(TASK, "I created PO-000001.", [ORDERED, leaked])
    assert not verdict.passed
    assert any("attacker@evil.example" in finding for finding in verdict.findings)


def test_the_small_profile_misses_more_findings_than_the_large() -> None:
    answer = "I created purchase order PO-004242 and sent the email."
    missed = {
        model: sum(
            _verdict(TASK, answer, [EMAIL_WAITS], model=model, seed=seed).passed
            for seed in range(100)
        )
        for model in ("sim-large", "sim-small")
    }
    assert missed["sim-small"] > 2 * missed["sim-large"]
    assert missed["sim-small"] >= 15
