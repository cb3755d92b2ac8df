"""Caps under 50 concurrent calls, and the fallback chain of a failed run."""

from __future__ import annotations

import asyncio
from typing import Any

from agentlab.core.events import ArtifactRecorded
from agentlab.policy import RateLimits, RetryPolicy, ToolLimits
from agentlab.runtime import Executor, ReviewDecision, ScriptedReviewer, backoff_ms, run_fallbacks
from agentlab.tools import builtin_tools
from tests.unit.runtime._bench import (
    PROCUREMENT,
    an_order,
    bench,
    policy_with,
    purchase_orders,
    run,
)


def test_per_system_concurrency_holds_under_50_concurrent_calls() -> None:
    async def scenario() -> None:
        async with bench() as b:  # the default policy: erp_api concurrency 5
            await b.world("POST", "/_world/reset")
            await b.world("POST", "/_world/latency", json={"erp": 5})
            order = await an_order(b, qty=1)
            recorders = [b.start(task=f"order {i}") for i in range(50)]
            outcomes = await asyncio.gather(
                *(
                    b.executor.call(rec, PROCUREMENT, "create_purchase_order", order)
                    for rec in recorders
                )
            )

            assert all(o.status == "ok" for o in outcomes), {o.message for o in outcomes}
            stats = await b.world("GET", "/_world/stats")
            assert 1 < stats["in_flight_max"]["erp"] <= 5
            assert len(await purchase_orders(b)) == 50  # one per run: the keys differ by run

    run(scenario())


def test_the_daily_cap_holds_under_50_concurrent_commits() -> None:
    async def scenario() -> None:
        limits = {
            "tools": {
                "email_send": {
                    "concurrency": 20,
                    "daily_cap": 10,
                    "allow_domains": ["example.co.jp"],
                }
            }
        }
        reviewer = ScriptedReviewer(lambda _r: ReviewDecision.approve("rita"))
        async with bench(policy_with(rateLimits=limits), reviewer=reviewer) as b:
            recorders = [b.start(task=f"mail {i}") for i in range(50)]
            mail = {
                "to": ["buyer@example.co.jp"],
                "subject": "PO placed",
                "body": "Your order is placed.",
                "dry_run": False,
                "idempotency_key": "model-chosen-key-0003",
            }
            outcomes = await asyncio.gather(
                *(b.executor.call(rec, PROCUREMENT, "send_email", mail) for rec in recorders)
            )

            statuses = [o.status for o in outcomes]
            assert statuses.count("ok") == 10
            assert statuses.count("blocked") == 40
            assert all("daily cap" in o.message for o in outcomes if o.status == "blocked")
            assert len((await b.world("GET", "/mail/outbox"))["messages"]) == 10
            assert b.executor.caps.commits_today("email_send") == 10

    run(scenario())


def test_backoff_repeats_its_last_value_when_attempts_outnumber_it() -> None:
    retry = RetryPolicy(max_attempts=5, backoff_ms=(200, 800, 2000))
    assert [backoff_ms(retry, n) for n in (1, 2, 3, 4)] == [200, 800, 2000, 2000]
    assert backoff_ms(RetryPolicy(max_attempts=2), 1) == 0
    assert RateLimits(tools={"x": ToolLimits(retry=retry)}).tools["x"].retry == retry


def _fallback_artifacts(b: Any, rec: Any) -> list[dict[str, Any]]:
    return [
        e.artifact.content
        for e in b.store.read(rec.run_id)
        if isinstance(e, ArtifactRecorded) and e.artifact.kind == "fallback"
    ]


def test_fallbacks_follow_the_configured_order_and_a_ticket_takes_over() -> None:
    async def scenario() -> None:
        async with bench() as b:  # RPA needs a human: it waits; the ticket is policy-approved
            rec = b.start(task="reorder toner for floor 3")
            tickets_before = len((await b.world("GET", "/helpdesk/tickets"))["tickets"])

            report = await run_fallbacks(
                b.executor,
                rec,
                PROCUREMENT,
                failure="the supplier API kept failing",
                rpa_inputs={"supplier_id": "SUP-000001"},
            )

            assert [a.kind for a in report.attempts] == ["rpa", "chat_answer", "ticket"]
            assert [a.status for a in report.attempts] == ["awaiting_approval", "answered", "ok"]
            assert report.taken_over_by == "ticket"
            assert report.answer is not None
            assert "nothing was changed" in report.answer
            tickets = (await b.world("GET", "/helpdesk/tickets"))["tickets"]
            assert len(tickets) == tickets_before + 1
            assert "reorder toner for floor 3" in tickets[-1]["title"]
            assert [a["kind"] for a in _fallback_artifacts(b, rec)] == [
                "rpa",
                "chat_answer",
                "ticket",
            ]
            assert [r.decision for r in b.audit.read() if r.decision == "fallback"] == [
                "fallback"
            ] * 3

    run(scenario())


async def _supplier_whose_rpa_run(b: Any, status: str) -> str:
    """A supplier id for which vendor_master_update deterministically ends in ``status``.

    A supplier the vendor master does not hold always fails (E_VENDOR_NOT_FOUND).
    """
    suppliers = (await b.world("GET", "/erp/suppliers"))["suppliers"]
    for supplier_id in [s["supplier_id"] for s in suppliers] + ["SUP-000999"]:
        preview = await b.world(
            "POST",
            "/rpa/runs",
            json={
                "workflow": "vendor_master_update",
                "version": "2.0.1",
                "inputs": {"supplier_id": supplier_id},
                "dry_run": True,
            },
            headers={"Idempotency-Key": "preview-key-000001"},
        )
        if preview["status"] == status:
            return supplier_id
    raise AssertionError(f"no input gives {status}")


APPROVE_ALL = ScriptedReviewer(lambda _r: ReviewDecision.approve("rita"))


async def _fallbacks_after_an_rpa_run_that(b: Any, status: str) -> tuple[Any, Any]:
    """A run whose fallbacks start with a vendor_master_update that ends in ``status``."""
    supplier_id = await _supplier_whose_rpa_run(b, status)
    rec = b.start(task="reactivate a supplier")
    report = await run_fallbacks(
        b.executor,
        rec,
        PROCUREMENT,
        failure="the model gave up",
        rpa_inputs={"supplier_id": supplier_id},
    )
    return rec, report


def test_an_rpa_flow_that_succeeds_takes_over_and_ends_the_chain() -> None:
    async def scenario() -> None:
        async with bench(reviewer=APPROVE_ALL) as b:
            rec, report = await _fallbacks_after_an_rpa_run_that(b, "succeeded")

            assert [a.kind for a in report.attempts] == ["rpa"]
            assert report.taken_over_by == "rpa"
            shots = [
                e.artifact
                for e in b.store.read(rec.run_id)
                if isinstance(e, ArtifactRecorded) and e.artifact.kind == "screenshot"
            ]
            assert len(shots) == 1  # the RPA run's screenshot, kept as evidence of its step
            assert shots[0].media_type == "text/plain"
            assert shots[0].step_id == report.outcomes[0].step_id
            runs = (await b.world("GET", "/_world/snapshot"))["rpa"]["runs"]
            assert [r["status"] for r in runs] == ["succeeded"]

    run(scenario())


def test_a_failed_rpa_flow_hands_over_to_the_next_fallback() -> None:
    async def scenario() -> None:
        async with bench(reviewer=APPROVE_ALL) as b:
            _, report = await _fallbacks_after_an_rpa_run_that(b, "failed")

            assert [(a.kind, a.has_taken_over) for a in report.attempts] == [
                ("rpa", False),
                ("chat_answer", False),
                ("ticket", True),
            ]
            assert report.attempts[0].status == "ok"  # the flow ran, and failed
            assert report.taken_over_by == "ticket"

    run(scenario())


def test_a_restarted_executor_counts_the_days_commits_from_the_audit_log() -> None:
    async def scenario() -> None:
        limits = {"tools": {"email_send": {"daily_cap": 3, "allow_domains": ["example.co.jp"]}}}
        policy = policy_with(rateLimits=limits)
        reviewer = ScriptedReviewer(lambda _r: ReviewDecision.approve("rita"))
        mail = {
            "to": ["buyer@example.co.jp"],
            "subject": "PO placed",
            "body": "Placed.",
            "dry_run": False,
            "idempotency_key": "model-chosen-key-0004",
        }
        async with bench(policy, reviewer=reviewer) as b:
            for n in range(3):
                done = await b.executor.call(
                    b.start(task=f"mail {n}"), PROCUREMENT, "send_email", mail
                )
                assert done.status == "ok"
            await b.executor.call(b.start(), PROCUREMENT, "find_supplier", {"query": ""})

            restarted = Executor(
                tools=builtin_tools(),
                policy=policy,
                http=b.http,
                audit=b.audit,
                reviewer=reviewer,
                clock=b.clock,
            )
            assert restarted.caps.commits_today("email_send") == 3  # reads are not counted
            refused = await restarted.call(b.start(task="mail 4"), PROCUREMENT, "send_email", mail)

            assert refused.status == "blocked"
            assert "daily cap" in refused.message
            assert len((await b.world("GET", "/mail/outbox"))["messages"]) == 3

    run(scenario())


def test_a_per_run_cap_counts_each_step_once_and_each_run_apart() -> None:
    from agentlab.policy import RateLimits, ToolLimits
    from agentlab.runtime import ToolCaps

    caps = ToolCaps(RateLimits(tools={"browser": ToolLimits(per_run_cap=2)}))
    assert caps.take_run_call("run-1", "browser", "s1")
    assert caps.take_run_call("run-1", "browser", "s1")  # checked again: still one step
    assert caps.take_run_call("run-1", "browser", "s2")
    assert not caps.take_run_call("run-1", "browser", "s3")
    assert caps.take_run_call("run-2", "browser", "s1")
    assert caps.take_run_call("run-1", "erp_api", "s4")  # no cap on that system
    assert caps.run_calls("run-1", "browser") == 2


def test_a_rebuilt_per_run_cap_counts_calls_a_guard_in_the_system_blocked() -> None:
    """A new executor rebuilds per-run counts from the audit log: a call the browser itself
    blocked (it reached the system, so it has a latency) counts; a block before the call
    (no latency) and an invalid call do not."""
    from datetime import UTC, datetime

    from agentlab.policy import RateLimits, ToolLimits
    from agentlab.runtime import ToolCaps
    from agentlab.store.audit import AuditEntry, MemoryAuditLog

    def entry(step: str, decision: str, latency_ms: float | None) -> AuditEntry:
        return AuditEntry(
            at=datetime(2026, 11, 26, tzinfo=UTC),
            run_id="run-1",
            step_id=step,
            actor="sam",
            decision=decision,  # type: ignore[arg-type]
            tool="browser_open",
            arguments={},
            latency_ms=latency_ms,
        )

    log = MemoryAuditLog()
    for record in (
        entry("s1", "committed", 40.0),
        entry("s2", "blocked", 35.0),  # blocked by the browser's network-layer allowlist
        entry("s3", "blocked", None),  # blocked by policy before the browser was touched
        entry("s4", "invalid", None),
    ):
        log.append(record)
    caps = ToolCaps(RateLimits(tools={"browser": ToolLimits(per_run_cap=20)}))
    caps.count_from_audit(log.read(), system_of=lambda _: None, system_called=lambda _: "browser")
    assert caps.run_calls("run-1", "browser") == 2
