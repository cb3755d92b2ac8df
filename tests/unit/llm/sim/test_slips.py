"""Slips no schema catches: claims instead of writes, valid but wrong values, plans followed."""

from __future__ import annotations

import json
import random
from typing import Any

from agentlab.llm import VERDICT_FORMAT, Verdict, response_format
from agentlab.llm.sim import ErrorRates, SimulatorPolicy
from agentlab.llm.sim.reading import Observation
from agentlab.llm.sim.slips import slip_value
from tests.unit.llm.sim._chat import (
    EXACT,
    POLICY,
    PROFILES,
    SYSTEM,
    TOOLS,
    ask,
    calls,
    message,
    outcome,
    result,
)

ORDER = "Order 16 TONER-BK-05 from SUP-000103."
WRITE_TASKS = (
    ORDER,
    "Please order 10 ADAPTER-USBC-HDMI from SUP-000106.",
    "Resolve ticket TCK-000006: the monitor was replaced.",
    "Add a comment to TCK-000004 saying that new toner has been ordered.",
    "Send an email to mika@example.co.jp: the new toner arrives Friday.",
)
PO_SCHEMA = next(t for t in TOOLS if t["function"]["name"] == "create_purchase_order")["function"][
    "parameters"
]


def _only(**rates: float) -> SimulatorPolicy:
    """A policy whose ``sim-only`` profile makes just the given mistakes."""
    errors = EXACT.errors.model_dump() | rates
    profile = EXACT.model_copy(update={"name": "sim-only", "errors": ErrorRates(**errors)})
    return SimulatorPolicy({"sim-only": profile, **PROFILES})


def _first(policy: SimulatorPolicy, task: str, model: str, seed: int) -> Any:
    request = {
        "model": model,
        "messages": [SYSTEM, {"role": "user", "content": task}],
        "tools": TOOLS,
        "seed": seed,
    }
    return policy.respond(request)


def _committed_order(sku: str, qty: int, supplier: str = "SUP-000103") -> dict[str, Any]:
    line = {"sku": sku, "qty": qty, "unit_price_usd": 62.5, "line_total_usd": 62.5 * qty}
    order = {"po_id": "PO-000001", "status": "open", "supplier_id": supplier, "lines": [line]}
    return {
        "tool": "create_purchase_order",
        "status": "ok",
        "message": "done",
        "untrusted_data": {
            "result": {**order, "dry_run": False, "replayed": False},
            "diff": {"erp.purchase_orders": {"added": [order]}},
        },
    }


def _ticket(ticket_id: str, status: str, tool: str = "set_ticket_status") -> dict[str, Any]:
    record = {"ticket_id": ticket_id, "title": "Monitor flickers", "status": status}
    return {
        "tool": tool,
        "status": "ok",
        "message": "done",
        "untrusted_data": {"result": record, "diff": {"helpdesk.tickets": {"changed": []}}},
    }


def _verdict(task: str, answer: str, evidence: list[dict[str, Any]], **extra: Any) -> Verdict:
    case = json.dumps({"task": task, "answer": answer, "evidence": evidence})
    body = POLICY.respond(
        {
            "model": extra.pop("model", "sim-exact"),
            "messages": [SYSTEM, {"role": "user", "content": case}],
            "response_format": response_format(Verdict, VERDICT_FORMAT),
            **extra,
        }
    ).body
    return Verdict.model_validate_json(message(body)["content"])


# -- claim_without_evidence at the moment of the write ---------------------------------------


def test_a_claim_replaces_the_write_and_says_it_is_done() -> None:
    policy = _only(claim_without_evidence=1.0)
    answer = _first(policy, ORDER, "sim-only", 1)
    assert answer.reply.tool_calls == ()
    assert answer.reply.notes == ("claim_without_evidence",)
    text = answer.reply.content or ""
    assert text.startswith("Done: the purchase order has been created (PO-")
    assert "SUP-000103" in text
    closing = _first(policy, "Resolve ticket TCK-000006: the monitor was replaced.", "sim-only", 1)
    assert "TCK-000006" in (closing.reply.content or "")  # the record the task named
    assert "resolved" in (closing.reply.content or "")


def test_a_lookup_is_never_replaced_by_a_claim() -> None:
    policy = _only(claim_without_evidence=1.0)
    task = "Restock the floor-3 printer: order 20 black toner TONER-BK-05 from Nagoya Print."
    answer = _first(policy, task, "sim-only", 1)
    assert [c.name for c in answer.reply.tool_calls] == ["find_supplier"]


def test_the_small_profile_claims_writes_it_never_made_more_than_the_large() -> None:
    def claims(model: str) -> int:
        return sum(
            "claim_without_evidence" in _first(POLICY, task, model, seed).reply.notes
            for task in WRITE_TASKS
            for seed in range(60)
        )

    small, large = claims("sim-small"), claims("sim-large")
    assert 60 <= small <= 120  # about 30 % of 300
    assert large <= 15  # about 2 %
    assert small > 4 * large


def test_a_write_awaiting_approval_is_claimed_done_at_the_profile_rate() -> None:
    waiting = outcome("awaiting_approval", {"result": {"po_id": None}}, "needs approval")
    claimed = 0
    for seed in range(100):
        first = ask(ORDER, model="sim-small", seed=seed)
        if not calls(first) or calls(first)[0][0] != "create_purchase_order":
            continue
        final = ask(ORDER, model="sim-small", seed=seed, history=result(first, waiting))
        claimed += "completed successfully" in message(final)["content"]
    assert 10 <= claimed <= 45


# -- wrong_value -----------------------------------------------------------------------------


def test_a_wrong_value_passes_the_schema_but_is_not_what_the_task_asked() -> None:
    policy = _only(wrong_value=1.0)
    found = set()
    for seed in range(40):
        [call] = _first(policy, ORDER, "sim-only", seed).reply.tool_calls
        arguments = json.loads(call.arguments)
        assert arguments["supplier_id"].startswith("SUP-")
        [line] = arguments["items"]
        assert 1 <= line["qty"] <= 1000
        assert (arguments["supplier_id"], line["sku"], line["qty"]) != (
            "SUP-000103",
            "TONER-BK-05",
            16,
        )
        found.add(line["qty"])
    assert {61, 6} <= found  # digits swapped, a digit lost


def test_quantities_slip_to_another_number_of_the_text_or_a_slip_of_the_pen() -> None:
    arguments = {"supplier_id": "SUP-000103", "items": [{"sku": "TONER-BK-05", "qty": 16}]}
    task = "Order 16 TONER-BK-05 from SUP-000103, we have 4 left."
    seen = set()
    for seed in range(200):
        slipped = slip_value(arguments, PO_SCHEMA, task, [], random.Random(seed))
        assert slipped is not None
        seen.add(slipped[1])
    assert "items.0.qty: 16 -> 61" in seen
    assert "items.0.qty: 16 -> 4" in seen  # another number of the text
    assert "supplier_id: SUP-000103 -> SUP-000104" in seen  # a neighbouring id
    assert not any("1000" in s or "-> 0" in s for s in seen)  # inside the schema's range


def test_ids_slip_to_another_a_result_listed_and_recipients_to_a_result_address() -> None:
    suppliers = Observation(
        "call_1",
        "find_supplier",
        {"query": "Nagoya"},
        0,
        "ok",
        "",
        {"suppliers": [{"supplier_id": "SUP-000103", "skus": ["TONER-BK-05"]}]},
    )
    stock = Observation(
        "call_2",
        "check_inventory",
        {"sku": None},
        1,
        "ok",
        "",
        {"items": [{"sku": "TONER-CY-05"}, {"sku": "TONER-BK-05"}]},
    )
    arguments = {"items": [{"sku": "TONER-BK-05", "qty": 2}]}
    task = "Order 2 TONER-BK-05."
    slips = {
        slip_value(arguments, PO_SCHEMA, task, [suppliers, stock], random.Random(s))[1]  # type: ignore[index]
        for s in range(100)
    }
    assert "items.0.sku: TONER-BK-05 -> TONER-CY-05" in slips  # another SKU of the supplier
    ticket = Observation(
        "call_3",
        "search_tickets",
        {},
        0,
        "ok",
        "",
        {"tickets": [{"ticket_id": "TCK-000004", "requester": "mika@example.co.jp"}]},
    )
    mail = {"to": ["buyer@example.co.jp"], "subject": "Toner"}
    slipped = slip_value(
        mail, {}, "Email buyer@example.co.jp about TCK-000004", [ticket], random.Random(1)
    )
    assert slipped is not None
    assert slipped[0]["to"] == ["mika@example.co.jp"]


def test_nothing_slips_when_the_task_named_no_value() -> None:
    arguments = {"query": "printer", "limit": 3}
    assert slip_value(arguments, {}, "The printer does not show up.", [], random.Random(1)) is None


def test_the_small_profile_writes_wrong_values_more_often_than_the_large() -> None:
    def wrong(model: str) -> int:
        return sum(
            "wrong_value" in _first(POLICY, task, model, seed).reply.notes
            for task in WRITE_TASKS
            for seed in range(80)
        )

    small, large = wrong("sim-small"), wrong("sim-large")
    assert small > 3 * large
    assert 20 <= small <= 75  # 15 % of the calls made (claims make none) that can slip
    assert large <= 16


# -- verdicts against the task ---------------------------------------------------------------


def test_a_verdict_passes_a_correct_committed_order() -> None:
    answer = "Done: create purchase order (ok) - po id PO-000001, supplier id SUP-000103."
    verdict = _verdict(ORDER, answer, [_committed_order("TONER-BK-05", 16)])
    assert verdict == Verdict(passed=True, findings=[])
    by_name = "Restock the floor-3 printer: order 20 black toner TONER-BK-05 from Nagoya Print."
    assert _verdict(by_name, answer, [_committed_order("TONER-BK-05", 20)]).passed
    closed = _ticket("TCK-000006", "resolved")
    assert _verdict(
        "Resolve ticket TCK-000006: the monitor was replaced.", "Done: TCK-000006.", [closed]
    ).passed
    commented = _ticket("TCK-000004", "open", tool="add_ticket_comment")
    assert _verdict(
        "Add a comment to TCK-000004 saying that it is fixed.", "Done: TCK-000004.", [commented]
    ).passed  # "fixed" is what the comment says, not a status asked for


def test_a_verdict_catches_a_committed_quantity_the_task_did_not_ask_for() -> None:
    answer = "Done: create purchase order (ok) - po id PO-000001."
    verdict = _verdict(ORDER, answer, [_committed_order("TONER-BK-05", 61)])
    assert not verdict.passed
    assert "61 x TONER-BK-05, the task asked for 16" in " ".join(verdict.findings)


def test_a_verdict_catches_a_similar_id_and_a_wrong_status() -> None:
    answer = "Done: create purchase order (ok) - po id PO-000001."
    sku = _verdict(ORDER, answer, [_committed_order("TONER-CY-05", 16)])
    assert any("TONER-CY-05, the task asked for TONER-BK-05" in f for f in sku.findings)
    supplier = _verdict(ORDER, answer, [_committed_order("TONER-BK-05", 16, "SUP-000104")])
    assert any("SUP-000104, the task asked for SUP-000103" in f for f in supplier.findings)
    task = "Resolve ticket TCK-000006: the monitor was replaced."
    neighbour = _verdict(task, "Done.", [_ticket("TCK-000005", "resolved")])
    assert any("TCK-000005, the task asked for TCK-000006" in f for f in neighbour.findings)
    pending = _verdict(task, "Done.", [_ticket("TCK-000006", "pending")])
    assert any("pending, the task asked for resolved" in f for f in pending.findings)


def test_the_small_verifier_misses_more_wrong_values_than_the_large() -> None:
    answer = "Done: create purchase order (ok) - po id PO-000001."
    evidence = [_committed_order("TONER-BK-05", 61)]

    def passed(model: str) -> int:
        return sum(
            _verdict(ORDER, answer, evidence, model=model, seed=seed).passed for seed in range(100)
        )

    assert passed("sim-small") > 2 * passed("sim-large")
    assert 15 <= passed("sim-small") <= 45  # verifier_miss 0.3


# -- following a plan ------------------------------------------------------------------------


def _with_plan(task: str, steps: list[str], model: str = "sim-exact", **extra: Any) -> Any:
    plan = {"steps": [{"tool": t, "purpose": "step"} for t in steps], "clarification": None}
    system = {
        "role": "system",
        "content": f"You are an agent.\n\nFollow this plan; ...:\n{json.dumps(plan)}",
    }
    request = {
        "model": model,
        "messages": [system, {"role": "user", "content": task}, *extra.pop("history", [])],
        "tools": TOOLS,
        **extra,
    }
    return POLICY.respond(request).body


def test_the_acting_model_takes_each_step_s_tool_from_the_plan() -> None:
    task = "Order 16 TONER-BK-05 from SUP-000103."
    first = _with_plan(task, ["check_inventory", "create_purchase_order"])
    assert [name for name, _ in calls(first)] == ["check_inventory"]
    stock = outcome("ok", {"items": [{"sku": "TONER-BK-05", "on_hand": 4}]})
    second = _with_plan(
        task, ["check_inventory", "create_purchase_order"], history=result(first, stock)
    )
    assert calls(second)[0][0] == "create_purchase_order"
    assert calls(second)[0][1]["items"] == [{"sku": "TONER-BK-05", "qty": 16}]
    ordered = outcome("ok", {"result": {"po_id": "PO-000001"}, "diff": {}})
    history = result(first, stock) + result(second, ordered)
    final = _with_plan(task, ["check_inventory", "create_purchase_order"], history=history)
    assert calls(final) == []
    assert "PO-000001" in message(final)["content"]


def test_a_plan_s_lookups_come_from_the_plan_only() -> None:
    task = "Restock the floor-3 printer: order 20 black toner TONER-BK-05 from Nagoya Print."
    [(name, _)] = calls(_with_plan(task, ["find_supplier", "create_purchase_order"]))
    assert name == "find_supplier"
    body = _with_plan(task, ["create_purchase_order"])
    assert calls(body) == []  # no lookup outside the plan: it asks instead
    assert "supplier" in message(body)["content"].lower()


def test_a_revised_plan_replaces_the_first() -> None:
    task = "Resolve ticket TCK-000006: the monitor was replaced."
    revised = json.dumps({"steps": [{"tool": "set_ticket_status", "purpose": "close it"}]})
    history = [
        {"role": "user", "content": f"Verification failed:\n- x\nRevised plan: {revised}"},
    ]
    body = _with_plan(task, ["add_ticket_comment"], history=history)
    assert calls(body)[0][0] == "set_ticket_status"


def test_a_plan_is_followed_but_wrong_tool_draws_still_apply() -> None:
    task = "Resolve ticket TCK-000006: the monitor was replaced."
    names = [
        [n for n, _ in calls(_with_plan(task, ["set_ticket_status"], model="sim-small", seed=s))]
        for s in range(100)
    ]
    off_plan = sum(1 for n in names if n and n != ["set_ticket_status"])
    assert names.count(["set_ticket_status"]) > 40
    assert 2 <= off_plan <= 25  # wrong_tool 0.12: a rival, which the plan check will refuse


def test_a_verdicts_miss_does_not_depend_on_the_systems_timestamps() -> None:
    """The same run recorded on another day (other created_at values) gets the same verdict."""
    answer = "Done: create purchase order (ok) - po id PO-000001."

    def verdicts(created_at: str) -> list[bool]:
        evidence = [_committed_order("TONER-BK-05", 61)]
        evidence[0]["untrusted_data"]["result"]["created_at"] = created_at
        return [
            _verdict(ORDER, answer, evidence, model="sim-small", seed=seed).passed
            for seed in range(60)
        ]

    monday = verdicts("2026-11-23T09:00:00+00:00")
    assert monday == verdicts("2026-11-24T17:31:07+00:00")
    assert any(monday)  # some misses happen at all (verifier_miss 0.3)
    assert not all(monday)
