"""The executor's pipeline against the sandbox world, in-process over an ASGI transport."""

from __future__ import annotations

import json
from typing import Any

from agentlab.core.events import StepCommitted, StepDryRunCompleted, StepFailed, StepRetried
from agentlab.policy import AutonomyPhase
from agentlab.runtime import ApprovalQueue, ReviewDecision, ScriptedReviewer
from agentlab.store import project_run
from tests.unit.runtime._bench import (
    PROCUREMENT,
    an_order,
    bench,
    policy_with,
    purchase_orders,
    run,
)

APPROVE_ALL = ScriptedReviewer(lambda _request: ReviewDecision.approve("rita"))


def test_invalid_arguments_are_rejected_naming_the_field_and_nothing_is_sent() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            order = await an_order(b)
            order["items"][0]["qty"] = 5000
            outcome = await b.executor.call(rec, PROCUREMENT, "create_purchase_order", order)

            assert outcome.status == "invalid"
            assert "items.0.qty" in outcome.message
            assert "less than or equal to 1000" in outcome.message
            assert b.sent_to("/erp/purchase-orders") == []
            assert b.kinds(rec)[-2:] == ["step_proposed", "step_failed"]
            assert b.audit.read()[-1].decision == "invalid"

    run(scenario())


def test_an_unknown_tool_is_an_invalid_call_not_a_crash() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            outcome = await b.executor.call(rec, PROCUREMENT, "delete_everything", {})
            assert outcome.status == "invalid"
            assert "known: " in outcome.message
            assert b.sent == []

    run(scenario())


def test_a_read_runs_at_once_and_is_recorded_as_committed_without_a_key() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            outcome = await b.executor.call(rec, PROCUREMENT, "find_supplier", {"query": ""})
            assert outcome.status == "ok"
            assert outcome.content["suppliers"]
            commit = b.store.read(rec.run_id)[-1]
            assert isinstance(commit, StepCommitted)
            assert commit.idempotency_key is None

    run(scenario())


def test_in_phase_2_a_write_only_dry_runs() -> None:
    async def scenario() -> None:
        async with bench(policy_with(phase=int(AutonomyPhase.DRY_RUN))) as b:
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await an_order(b)
            )

            assert outcome.status == "previewed"
            assert "phase 2" in outcome.message
            assert await purchase_orders(b) == []
            [request] = b.sent_to("/erp/purchase-orders")
            assert json.loads(request.content)["dry_run"] is True
            dry_run = b.store.read(rec.run_id)[-1]
            assert isinstance(dry_run, StepDryRunCompleted)
            assert dry_run.is_final
            assert project_run(b.store.read(rec.run_id)).open_steps == []

    run(scenario())


def test_a_phase_2_preview_is_never_committed_later_even_under_a_new_policy() -> None:
    async def scenario() -> None:
        async with bench(policy_with(phase=int(AutonomyPhase.DRY_RUN))) as b:
            rec = b.start()
            order = await an_order(b, qty=1)
            previewed = await b.executor.call(rec, PROCUREMENT, "create_purchase_order", order)
            state = project_run(b.store.read(rec.run_id)).steps[previewed.step_id]
            b.executor.policy = policy_with(phase=int(AutonomyPhase.COMMIT))

            again = await b.executor.continue_step(rec, PROCUREMENT, state)

            assert again.status == "previewed"
            assert await purchase_orders(b) == []

    run(scenario())


def test_a_model_asking_for_a_preview_gets_only_a_preview() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            order = {**await an_order(b), "dry_run": True}
            outcome = await b.executor.call(rec, PROCUREMENT, "create_purchase_order", order)
            assert outcome.status == "previewed"
            assert outcome.content["result"]["total_usd"] > 0
            assert await purchase_orders(b) == []

    run(scenario())


def test_a_commit_within_the_policy_limit_is_approved_by_the_policy() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await an_order(b, qty=1)
            )

            assert outcome.status == "ok", outcome.message
            [po] = await purchase_orders(b)
            assert outcome.content["result"]["po_id"] == po["po_id"]
            kinds = b.kinds(rec)
            assert kinds[-4:] == [
                "step_proposed",
                "step_dry_run_completed",
                "step_approved",
                "step_committed",
            ]
            approved = b.store.read(rec.run_id)[-2]
            assert approved.approver == "policy:po_up_to_5000_usd"
            # the world received the step's derived key, not the model's
            step = project_run(b.store.read(rec.run_id)).steps[outcome.step_id].step
            commit_request = b.sent_to("/erp/purchase-orders")[-1]
            assert commit_request.headers["Idempotency-Key"] == step.idempotency_key
            decisions = [r.decision for r in b.audit.read()]
            assert decisions[-3:] == ["dry_run", "approved", "committed"]

    run(scenario())


async def _big_order(b: Any) -> dict[str, Any]:
    """An order above the 5,000 USD the default policy approves by itself."""
    order = await an_order(b, qty=1000, lines=2)
    return order


def test_a_commit_that_needs_a_human_waits_and_nothing_is_committed() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await _big_order(b)
            )

            assert outcome.status == "awaiting_approval"
            assert "po_above_5000_usd" in outcome.message
            assert await purchase_orders(b) == []
            assert [p.step_id for p in ApprovalQueue(b.store).pending()] == [outcome.step_id]
            assert b.audit.read()[-1].decision == "approval_requested"

            # asking again changes nothing: still no approval, still no commit
            state = project_run(b.store.read(rec.run_id)).steps[outcome.step_id]
            again = await b.executor.continue_step(rec, PROCUREMENT, state)
            assert again.status == "awaiting_approval"
            assert await purchase_orders(b) == []

    run(scenario())


def test_a_person_approves_from_the_queue_and_the_step_commits_once() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            waiting = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await _big_order(b)
            )
            queue = ApprovalQueue(b.store, clock=b.clock)
            queue.approve(rec.run_id, waiting.step_id, reviewer="rita", reason="budget ok")
            assert queue.pending() == []

            from agentlab.store import RunRecorder

            resumed, state = RunRecorder.resume(b.store, rec.run_id, clock=b.clock)
            [step] = state.open_steps
            done = await b.executor.continue_step(resumed, PROCUREMENT, step)

            assert done.status == "ok", done.message
            assert len(await purchase_orders(b)) == 1
            committed = [r for r in b.audit.read() if r.decision == "committed"]
            assert committed[-1].approval == "human:rita"

    run(scenario())


def test_a_rejection_is_final_and_reaches_the_model() -> None:
    async def scenario() -> None:
        reviewer = ScriptedReviewer(lambda _r: ReviewDecision.reject("rita", "wrong supplier"))
        async with bench(reviewer=reviewer) as b:
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await _big_order(b)
            )
            assert outcome.status == "rejected"
            assert "wrong supplier" in outcome.for_model()
            assert await purchase_orders(b) == []
            state = project_run(b.store.read(rec.run_id))
            assert state.steps[outcome.step_id].was_reworked
            assert state.open_steps == []

    run(scenario())


def test_a_reviewers_edit_is_validated_and_committed_as_rework() -> None:
    async def scenario() -> None:
        def halve(request: Any) -> ReviewDecision:
            edited = json.loads(json.dumps(request.arguments))
            for line in edited["items"]:
                line["qty"] = 2
            return ReviewDecision.approve("rita", edited_arguments=edited)

        async with bench(reviewer=ScriptedReviewer(halve)) as b:
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await _big_order(b)
            )
            assert outcome.status == "ok", outcome.message
            [po] = await purchase_orders(b)
            assert {line["qty"] for line in po["lines"]} == {2}
            assert project_run(b.store.read(rec.run_id)).steps[outcome.step_id].was_reworked

    run(scenario())


def test_an_edit_that_breaks_the_schema_is_not_committed() -> None:
    async def scenario() -> None:
        def break_it(request: Any) -> ReviewDecision:
            return ReviewDecision.approve(
                "rita", edited_arguments={**request.arguments, "items": []}
            )

        async with bench(reviewer=ScriptedReviewer(break_it)) as b:
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await _big_order(b)
            )
            assert outcome.status == "invalid"
            assert "items" in outcome.message
            assert await purchase_orders(b) == []

    run(scenario())


def test_mail_to_a_domain_off_the_allowlist_never_leaves() -> None:
    async def scenario() -> None:
        async with bench(reviewer=APPROVE_ALL) as b:
            rec = b.start()
            outcome = await b.executor.call(
                rec,
                PROCUREMENT,
                "send_email",
                {
                    "to": ["buyer@example.co.jp", "leak@evil.example"],
                    "subject": "Order",
                    "body": "Salary bands attached",
                    "dry_run": False,
                    "idempotency_key": "model-chosen-key-0002",
                },
            )
            assert outcome.status == "blocked"
            assert "leak@evil.example" in outcome.message
            assert b.sent_to("/mail/send") == []
            assert (await b.world("GET", "/mail/outbox"))["messages"] == []
            blocked = b.audit.read()[-1]
            assert (blocked.decision, blocked.approval) == ("blocked", "policy:allowlist")
            assert "Salary" not in json.dumps(blocked.model_dump(mode="json"))  # masked

    run(scenario())


def test_retryable_failures_are_retried_with_the_configured_backoff() -> None:
    async def scenario() -> None:
        async with bench() as b:
            await b.world(
                "POST",
                "/_world/faults",
                json={"method": "POST", "path": "/erp/purchase-orders", "status": 503, "times": 2},
            )
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await an_order(b, qty=1)
            )

            assert outcome.status == "ok", outcome.message
            events = b.store.read(rec.run_id)
            retries = [e for e in events if isinstance(e, StepRetried)]
            assert [(e.attempt, e.backoff_ms) for e in retries] == [(2, 200), (3, 800)]
            assert b.slept_s == [0.2, 0.8]
            failures = [e for e in events if isinstance(e, StepFailed)]
            assert [f.error_code for f in failures] == ["http_503", "http_503"]
            assert len(await purchase_orders(b)) == 1

    run(scenario())


def test_retries_stop_at_max_attempts_and_the_step_fails_for_good() -> None:
    async def scenario() -> None:
        async with bench() as b:
            await b.world(
                "POST",
                "/_world/faults",
                json={"method": "POST", "path": "/erp/purchase-orders", "status": 503, "times": 3},
            )
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await an_order(b, qty=1)
            )

            assert outcome.status == "failed"
            assert "after 3 attempt(s)" in outcome.message
            last = b.store.read(rec.run_id)[-1]
            assert isinstance(last, StepFailed)
            assert not last.is_retryable
            assert project_run(b.store.read(rec.run_id)).open_steps == []

    run(scenario())


def test_retry_after_from_the_system_lengthens_the_wait() -> None:
    async def scenario() -> None:
        async with bench() as b:
            await b.world(
                "POST",
                "/_world/faults",
                json={
                    "method": "GET",
                    "path": "/erp/suppliers",
                    "status": 429,
                    "times": 1,
                    "retry_after_s": 5,
                },
            )
            rec = b.start()
            outcome = await b.executor.call(rec, PROCUREMENT, "find_supplier", {"query": ""})
            assert outcome.status == "ok"
            assert b.slept_s == [5.0]

    run(scenario())


def test_a_business_error_from_the_system_goes_back_to_the_model_unretried() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            order = {**await an_order(b), "supplier_id": "SUP-999999"}
            outcome = await b.executor.call(rec, PROCUREMENT, "create_purchase_order", order)
            assert outcome.status == "rejected"
            assert "SUP-999999" in outcome.message
            assert b.slept_s == []
            assert len(b.sent_to("/erp/purchase-orders")) == 1

    run(scenario())


def test_continuing_a_committed_step_returns_the_recorded_result() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            first = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await an_order(b, qty=1)
            )
            state = project_run(b.store.read(rec.run_id)).steps[first.step_id]
            sent_before = len(b.sent)

            again = await b.executor.continue_step(rec, PROCUREMENT, state)

            assert again.status == "replayed"
            assert again.content == first.content
            assert len(b.sent) == sent_before
            assert len(await purchase_orders(b)) == 1

    run(scenario())


def test_the_model_reads_results_as_untrusted_data() -> None:
    async def scenario() -> None:
        async with bench() as b:
            rec = b.start()
            outcome = await b.executor.call(rec, PROCUREMENT, "find_supplier", {"query": ""})
            text = json.loads(outcome.for_model())
            assert set(text) == {"tool", "status", "message", "untrusted_data"}

    run(scenario())


def test_what_the_model_reads_goes_to_the_encrypted_conversation_log() -> None:
    async def scenario() -> None:
        from cryptography.fernet import Fernet

        from agentlab.store.conversation import MemoryConversationLog

        log = MemoryConversationLog(Fernet.generate_key())
        async with bench() as b:
            b.executor._conversation = log
            rec = b.start()
            outcome = await b.executor.call(rec, PROCUREMENT, "find_supplier", {"query": "Tokyo"})
            [turn] = log.read(rec.run_id)
            assert (turn.role, turn.text) == ("tool", outcome.for_model())
            assert all(b"Tokyo" not in sealed.ciphertext for sealed in log.sealed)

    run(scenario())


def test_a_commit_whose_answer_is_lost_is_retried_and_makes_one_order() -> None:
    """The ERP commits, the answer never arrives; the retry with the same key is replayed."""

    async def scenario() -> None:
        import httpx

        async with bench() as b:
            lost: list[str] = []

            async def lose_the_first_commit_answer(response: httpx.Response) -> None:
                request = response.request
                is_commit = (
                    request.method == "POST"
                    and request.url.path == "/erp/purchase-orders"
                    and json.loads(request.content)["dry_run"] is False
                )
                if is_commit and not lost:
                    lost.append(request.headers["Idempotency-Key"])
                    raise httpx.ReadError("connection reset after the commit", request=request)

            b.http.event_hooks["response"] = [lose_the_first_commit_answer]
            rec = b.start()
            outcome = await b.executor.call(
                rec, PROCUREMENT, "create_purchase_order", await an_order(b, qty=1)
            )

            assert outcome.status == "ok", outcome.message
            assert outcome.content["result"]["replayed"] is True
            assert len(await purchase_orders(b)) == 1
            commits = [
                r
                for r in b.sent_to("/erp/purchase-orders")
                if b'"dry_run":false' in r.content or json.loads(r.content)["dry_run"] is False
            ]
            assert [r.headers["Idempotency-Key"] for r in commits] == lost * 2
            assert b.slept_s == [0.2]

    run(scenario())
