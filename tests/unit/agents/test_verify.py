"""The verifier's rules: what they pass and what they catch."""

from __future__ import annotations

from typing import Any

from agentlab.agents.verify import check_answer, check_call_against_plan, check_outcome

WRITES = {"create_purchase_order", "send_email", "create_ticket", "set_ticket_status"}


def is_write(tool: str) -> bool:
    return tool in WRITES


def outcome(tool: str, status: str, data: Any = None) -> dict[str, Any]:
    return {"tool": tool, "status": status, "message": "", "untrusted_data": data}


ORDER_DONE = outcome("create_purchase_order", "ok", {"po_id": "PO-000007", "total_usd": 1000})
SUPPLIER = outcome("find_supplier", "ok", {"suppliers": [{"supplier_id": "SUP-000103"}]})


def test_an_answer_backed_by_the_evidence_passes() -> None:
    answer = "Placed purchase order PO-000007 with SUP-000103 for 16 toners."
    assert check_answer(answer, [SUPPLIER, ORDER_DONE], is_write=is_write) == []


def test_an_id_no_tool_returned_is_a_finding() -> None:
    findings = check_answer("Placed PO-000099.", [SUPPLIER, ORDER_DONE], is_write=is_write)
    assert findings == ["the answer cites PO-000099, which no tool result contains"]


def test_a_claim_of_action_without_a_done_write_is_a_finding() -> None:
    waiting = outcome("create_purchase_order", "awaiting_approval", {"total_usd": 7350})
    findings = check_answer("The order has been placed.", [SUPPLIER, waiting], is_write=is_write)
    assert findings == ["the answer says 'placed', but no tool result shows that action done"]


def test_a_read_does_not_back_a_claim_of_action() -> None:
    findings = check_answer("I sent the email.", [SUPPLIER], is_write=is_write)
    assert findings == ["the answer says 'sent', but no tool result shows that action done"]


def test_a_sentence_that_reports_an_action_did_not_happen_is_no_claim() -> None:
    waiting = outcome("create_purchase_order", "awaiting_approval", {"total_usd": 7350})
    answer = "The order was not placed yet: it is waiting for approval by a person."
    assert check_answer(answer, [waiting], is_write=is_write) == []


def test_one_false_sentence_is_caught_among_true_ones() -> None:
    answer = "Placed PO-000007. I also sent the confirmation email."
    findings = check_answer(answer, [ORDER_DONE], is_write=is_write)
    assert findings == ["the answer says 'sent', but no tool result shows that action done"]


def test_a_call_outside_the_plan_is_refused_and_one_inside_passes() -> None:
    plan = {"steps": [{"tool": "search_kb", "purpose": "find the policy"}]}
    assert check_call_against_plan("search_kb", plan) == []
    [finding] = check_call_against_plan("send_email", plan)
    assert "'send_email' is not in the plan (search_kb)" in finding
    assert check_call_against_plan("search_kb", None) != []


def test_outcomes_that_did_their_job_or_wait_pass_and_the_rest_are_findings() -> None:
    for status in ("ok", "replayed", "awaiting_approval", "previewed"):
        assert check_outcome(outcome("create_ticket", status)) == []
    for status in ("invalid", "blocked", "rejected", "failed"):
        [finding] = check_outcome(outcome("create_ticket", status))
        assert finding.startswith(f"create_ticket ended {status}")


def test_only_words_that_undo_the_claim_excuse_it() -> None:
    read_only = [SUPPLIER]
    for answer in (
        "I placed the order with SUP-000103, so no further action is needed.",
        "I sent the confirmation email if you want to check it.",
    ):
        assert check_answer(answer, read_only, is_write=is_write) != [], answer
    for answer in (
        "The order will be placed once a person approves it.",
        "I haven't sent the email: the address is off the allowlist.",
        "The ticket was never closed.",
    ):
        assert check_answer(answer, read_only, is_write=is_write) == [], answer
