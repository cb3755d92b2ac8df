"""The simulator drives the real executor and sandbox world: large completes more than small.

A minimal agent loop, in-process: the simulator's answer -> ``Executor.call`` for each tool
call (with the model's call id) -> the outcome's ``for_model()`` text as the tool message,
until the simulator answers. Each task is run in 30 seeded variants per profile; success is
judged from the world's state and the answer, not from the simulator's word.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agentlab.llm import VERDICT_FORMAT, Verdict, response_format
from agentlab.llm.sim import SimulatorPolicy
from agentlab.policy import default_policy
from agentlab.runtime import CallRequest
from agentlab.tools import builtin_tools
from agentlab.world import build_world_app
from tests.unit.runtime._bench import Bench, bench

VARIANTS = 30
POLICY = default_policy()
REGISTRY = builtin_tools()
SIM = SimulatorPolicy()


@dataclass(frozen=True)
class Task:
    """A task, who asks it, and how to tell that it was done."""

    text: str
    actor: str
    use_case: str
    succeeded: Callable[[Bench, str], Awaitable[bool]]


async def _orders(b: Bench) -> list[dict[str, Any]]:
    return (await b.world("GET", "/erp/purchase-orders"))["purchase_orders"]


async def _restocked(b: Bench, answer: str) -> bool:
    orders = await _orders(b)
    return (
        len(orders) == 1
        and orders[0]["supplier_id"] == "SUP-000103"
        and [line["sku"] for line in orders[0]["lines"]] == ["TONER-BK-05"]
        and orders[0]["po_id"] in answer
    )


async def _ordered_and_email_waits(b: Bench, answer: str) -> bool:
    orders = await _orders(b)
    outbox = (await b.world("GET", "/mail/outbox"))["messages"]
    return (
        len(orders) == 1
        and orders[0]["lines"][0] == {**orders[0]["lines"][0], "sku": "TONER-CY-05", "qty": 12}
        and orders[0]["po_id"] in answer
        and outbox == []  # a person must approve it first
        and "waiting for approval" in answer
    )


async def _commented(b: Bench, answer: str) -> bool:
    ticket = await b.world("GET", "/helpdesk/tickets/TCK-000004")
    return [c["body"].split("\n")[0] for c in ticket["comments"]] == [
        "the toner was ordered"
    ] and "TCK-000004" in answer


async def _opened(b: Bench, answer: str) -> bool:
    tickets = (await b.world("GET", "/helpdesk/tickets"))["tickets"]
    new = [t for t in tickets if t["ticket_id"] not in {f"TCK-{i:06d}" for i in range(1, 11)}]
    return (
        len(new) == 1
        and new[0]["requester"] == "kenji@example.co.jp"
        and new[0]["priority"] == "urgent"
        and new[0]["ticket_id"] in answer
    )


async def _answered_from_kb(b: Bench, answer: str) -> bool:
    return "KB-IT-001" in answer and not b.sent_to("/mail/send")


TASKS = [
    Task(
        "Restock the floor-3 printer's black toner from the Nagoya supplier",
        "alice",
        "procurement",
        _restocked,
    ),
    Task(
        "Order 12 TONER-CY-05 from SUP-000103 and email mika@example.co.jp that it is ordered",
        "alice",
        "procurement",
        _ordered_and_email_waits,
    ),
    Task("Add a comment to TCK-000004 saying the toner was ordered", "bob", "helpdesk", _commented),
    Task(
        "Open a ticket for kenji@example.co.jp: the VPN drops every hour, urgent",
        "bob",
        "helpdesk",
        _opened,
    ),
    Task("How do I connect to the VPN from a hotel?", "bob", "helpdesk", _answered_from_kb),
]


@dataclass(frozen=True)
class Ran:
    """One run: did it do the task, what it answered, and every tool outcome it read."""

    succeeded: bool
    answer: str
    evidence: list[dict[str, Any]]


async def _run(task: Task, model: str, seed: int, app: Any) -> Ran:
    tools = [REGISTRY.get(name).openai_tool() for name in POLICY.use_cases[task.use_case].tools]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an internal help-desk agent."},
        {"role": "user", "content": task.text},
    ]
    async with bench(app=app) as b:
        recorder = b.start(task=task.text, actor=task.actor)
        request = CallRequest(actor=task.actor, use_case=task.use_case)
        evidence: list[dict[str, Any]] = []
        for _ in range(12):
            request_body = {"model": model, "messages": messages, "tools": tools, "seed": seed}
            body = SIM.respond(request_body).body
            message = body["choices"][0]["message"]
            if not message.get("tool_calls"):
                answer = message["content"] or message["refusal"] or ""
                return Ran(await task.succeeded(b, answer), answer, evidence)
            messages.append(
                {"role": "assistant", "content": None, "tool_calls": message["tool_calls"]}
            )
            for call in message["tool_calls"]:
                try:
                    arguments = json.loads(call["function"]["arguments"])
                except ValueError:
                    arguments = {"arguments": call["function"]["arguments"]}  # invalid: refused
                outcome = await b.executor.call(
                    recorder,
                    request,
                    call["function"]["name"],
                    arguments if isinstance(arguments, dict) else {},
                    call_id=call["id"],
                )
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": outcome.for_model()}
                )
                evidence.append(json.loads(outcome.for_model()))
    return Ran(False, "", evidence)  # never answered


RUNS: dict[str, dict[str, list[Ran]]] = {}


def _runs() -> dict[str, dict[str, list[Ran]]]:
    """Every task in every variant for both profiles, run once per test session."""
    if not RUNS:

        async def scenario() -> None:
            app = build_world_app()
            for model in ("sim-large", "sim-small"):
                RUNS[model] = {
                    task.text: [await _run(task, model, seed, app) for seed in range(VARIANTS)]
                    for task in TASKS
                }

        asyncio.run(scenario())
    return RUNS


def test_the_large_profile_completes_more_tasks_than_the_small_one() -> None:
    done = {
        model: {text[:30]: sum(r.succeeded for r in runs) for text, runs in by_task.items()}
        for model, by_task in _runs().items()
    }
    large, small = sum(done["sim-large"].values()), sum(done["sim-small"].values())
    total = VARIANTS * len(TASKS)
    print(f"completed of {total}: large {large}, small {small}; by task: {done}")
    assert large > small + total // 10
    assert large >= 0.85 * total
    assert small >= 0.3 * total  # worse, not broken


def _verdict(task: str, run: Ran) -> Verdict:
    case = json.dumps({"task": task, "answer": run.answer, "evidence": run.evidence})
    body = SIM.respond(
        {
            "model": "sim-large",
            "messages": [{"role": "user", "content": case}],
            "response_format": response_format(Verdict, VERDICT_FORMAT),
        }
    ).body
    return Verdict.model_validate_json(body["choices"][0]["message"]["content"])


def test_a_verifier_catches_the_claims_a_single_agent_lets_through() -> None:
    claimed = [
        (text, run)
        for text, runs in _runs()["sim-small"].items()
        for run in runs
        if not run.succeeded and "completed successfully" in run.answer
    ]
    honest = [
        (text, run) for text, runs in _runs()["sim-large"].items() for run in runs if run.succeeded
    ]
    caught = sum(not _verdict(text, run).passed for text, run in claimed)
    passed = sum(_verdict(text, run).passed for text, run in honest)
    print(
        f"unsupported claims caught {caught} of {len(claimed)}; "
        f"honest answers passed {passed} of {len(honest)}"
    )
    assert len(claimed) >= 5
    assert caught >= 0.8 * len(claimed)
    assert passed >= 0.9 * len(honest)
