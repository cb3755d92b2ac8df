r"""``multi``: a planner, the deterministic executor, and a verifier, kept apart.

::

    START -> plan -> propose -> check -> act -> verify_step -> propose ...
               ^        |                  \\-> await_approval -> act
               |        \\-> (answer) -> verify_answer -> finish -> END
               \\------------ replan <-- (a failed verification) <--/

* ``plan``: the planner model decomposes the task into tool steps before any data is read
  (or asks the requester to clarify).
* ``propose``: the acting model fills in the next call of the plan from the task and the
  results so far, or answers.
* ``check``: a rule refuses any call to a tool outside the plan -- the usual shape of an
  instruction injected through a document or a tool result.
* ``act``: the runtime executor runs the calls: policy, dry-run, approval, idempotency.
* ``verify_step``: rules check each outcome; ``verify_answer``: rules check that every id
  and every claim of action in the answer is backed by a tool result, then a model checks
  the answer against the evidence. A failed verification sends the planner back to work,
  at most ``max_replans`` times.
"""

from __future__ import annotations

import json
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import ValidationError

from agentlab.agents import prompts
from agentlab.agents._nodes import (
    act,
    after_act,
    ask,
    await_approval,
    finish,
    limit_reached,
    pending_calls,
    spent,
)
from agentlab.agents.context import AgentContext
from agentlab.agents.conversation import requested
from agentlab.agents.state import AgentState
from agentlab.agents.verify import (
    DONE,
    check_answer,
    check_call_against_plan,
    check_call_repeats,
    check_outcome,
)
from agentlab.llm import PLAN_FORMAT, VERDICT_FORMAT, Plan, Verdict, response_format
from agentlab.store import project_run


def start_messages(task: str) -> list[dict[str, Any]]:
    """A ``multi`` run begins with no conversation: the planner writes the first one."""
    return []


async def plan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the planner for a plan (again, with the findings, after a failed verification)."""
    ctx = runtime.context
    if reason := limit_reached(state, ctx):
        return {"outcome": "failed", "reason": reason}
    findings = state.get("findings") or []
    replans = state.get("replans", 0) + (1 if findings else 0)
    talk = state.get("talk") or []  # a conversation's earlier turns, if any
    asked: list[dict[str, Any]] = [
        {"role": "system", "content": prompts.PLANNER},
        {"role": "user", "content": state["task"]},
        *talk,
    ]
    if findings:
        done = [
            {k: e.get(k) for k in ("tool", "status", "message")} for e in state.get("evidence", [])
        ]
        asked.append(
            {
                "role": "user",
                "content": prompts.replan_request(findings)
                + f"\nTool outcomes so far: {json.dumps(done, ensure_ascii=False)}",
            }
        )
    response = await ask(
        ctx,
        "planner",
        asked,
        tools=ctx.tools,
        tool_choice="none",
        response_format=response_format(Plan, PLAN_FORMAT),
    )
    update: dict[str, Any] = {"replans": replans, **spent(state, response)}
    if response.refusal is not None:
        return update | {"answer": response.refusal, "outcome": "failed", "reason": "refused"}
    try:
        new_plan = Plan.model_validate_json(response.content or "")
    except ValidationError as exc:
        finding = f"the planner's answer is not a plan: {exc.errors()[0]['msg']}"
        ctx.recorder.verify(verifier="rules", passed=False, findings=(finding,))
        return update | _replan_or_fail(replans, ctx, [finding])
    plan_json = new_plan.model_dump(mode="json")
    ctx.recorder.artifact("plan", plan_json)
    if new_plan.clarification and state.get("steps", 0) > state.get("steps_at_turn", 0):
        return update | {
            "plan": plan_json,
            "outcome": "failed",
            "reason": "the planner asked for clarification after the run had acted: "
            + new_plan.clarification,
        }
    if new_plan.clarification:
        return update | {
            "plan": plan_json,
            "answer": new_plan.clarification,
            "outcome": "succeeded",
            "reason": "asked the requester to clarify",
        }
    if not state.get("messages"):
        messages = [
            {"role": "system", "content": prompts.executor_prompt(plan_json)},
            {"role": "user", "content": state["task"]},
            *talk,
        ]
    else:
        revised = json.dumps(plan_json, ensure_ascii=False)
        note = prompts.replan_request(findings) if findings else "The plan changed."
        messages = [{"role": "user", "content": f"{note}\nRevised plan: {revised}"}]
    return update | {"plan": plan_json, "messages": messages, "findings": [], "answer": None}


async def propose(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the acting model for the next call of the plan, or for its answer."""
    ctx = runtime.context
    if reason := limit_reached(state, ctx):
        return {"outcome": "failed", "reason": reason}
    response = await ask(ctx, "agent", state["messages"], tools=ctx.tools)
    update: dict[str, Any] = {"messages": [response.as_message()], **spent(state, response)}
    if response.refusal is not None:
        return update | {"answer": response.refusal, "outcome": "failed", "reason": "refused"}
    if not response.tool_calls:
        update["answer"] = response.content or ""
    else:
        update["answer"] = None
    return update


async def check(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Refuse calls before they run: to a tool the plan does not name, or repeating a write.

    A repeat is a write the run has already committed with the same arguments.
    """
    ctx = runtime.context
    run = project_run(ctx.recorder.store.read(ctx.recorder.run_id))
    committed = [
        (s.step.tool, s.step.arguments)
        for s in run.steps.values()
        if s.status == "committed" and s.step.has_side_effect
    ]
    messages, evidence, findings = [], [], []
    for call in pending_calls(state):
        found = check_call_against_plan(call.name, state.get("plan")) or check_call_repeats(
            call.name, call.parsed_arguments(), committed
        )
        if not found:
            continue
        refused = {
            "tool": call.name,
            "status": "refused_by_verifier",
            "message": found[0],
            "untrusted_data": None,
        }
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(refused)})
        evidence.append(refused)
        findings.extend(found)
    if findings:
        ctx.recorder.verify(verifier="rules", passed=False, findings=tuple(findings))
        ctx.say(f"check: refused {len(findings)} call(s): {findings[0]}")
    return {"messages": messages, "evidence": evidence, "findings": findings}


async def verify_step(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Check the outcomes of the calls just made; a failure sends the planner back."""
    ctx = runtime.context
    # Calls the check refused are already recorded as its findings; the rest ran.
    answered = [
        outcome
        for outcome in _last_turn_results(state)
        if outcome.get("status") != "refused_by_verifier"
    ]
    step_findings = [f for outcome in answered for f in check_outcome(outcome)]
    if answered:
        ctx.recorder.verify(
            verifier="rules", passed=not step_findings, findings=tuple(step_findings)
        )
    findings = [*state.get("findings", []), *step_findings]
    if state.get("replans", 0) >= ctx.limits.max_replans:
        findings = []  # recorded above; with no re-plan left, the agent carries on and answers
    return {"findings": findings}


async def verify_answer(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Rules first, then a model: is every claim of the answer backed by the evidence?"""
    ctx = runtime.context
    answer = state.get("answer") or ""
    evidence = state.get("evidence", [])
    tools = ctx.executor.tools

    def is_write(name: str) -> bool:
        spec = tools.get(name)
        return spec is not None and spec.is_write

    findings = check_answer(answer, evidence, is_write=is_write)
    ctx.recorder.verify(verifier="rules", passed=not findings, findings=tuple(findings))
    update: dict[str, Any] = {}
    if not findings and (reason := limit_reached(state, ctx)):
        return {"outcome": "failed", "reason": reason}
    if not findings:
        model = ctx.verifier_model or ctx.model
        response = await ask(
            ctx,
            "verifier",
            [
                {"role": "system", "content": prompts.VERIFIER},
                {
                    "role": "user",
                    "content": prompts.verifier_request(requested(state), answer, evidence),
                },
            ],
            response_format=response_format(Verdict, VERDICT_FORMAT),
            model=model,
        )
        update |= spent(state, response)
        try:
            verdict = Verdict.model_validate_json(response.content or "")
        except ValidationError as exc:
            verdict = Verdict(
                passed=False,
                findings=[f"the verifier's answer is not a verdict: {exc.errors()[0]['msg']}"],
            )
        ctx.recorder.verify(
            verifier=f"model:{response.model}",
            passed=verdict.passed,
            findings=tuple(verdict.findings),
        )
        if not verdict.passed:
            findings = verdict.findings or ["the model verifier did not pass the answer"]
            committed = [
                e["tool"] for e in evidence if e.get("status") in DONE and is_write(e["tool"])
            ]
            if committed:
                # The side effects are done; planning again could only add more of them.
                # A person has to look: the run fails with the verifier's findings.
                ctx.say(f"verify: {findings[0]} (after a committed {committed[-1]})")
                return update | {
                    "findings": [],
                    "outcome": "failed",
                    "reason": "verification failed after a side effect was committed, so the "
                    "run was not re-planned; a person must review: " + "; ".join(findings),
                }
    if not findings:
        return update | {"outcome": "succeeded"}
    ctx.say(f"verify: {len(findings)} finding(s): {findings[0]}")
    return update | _replan_or_fail(state.get("replans", 0), ctx, findings)


def _replan_or_fail(replans: int, ctx: AgentContext, findings: list[str]) -> dict[str, Any]:
    """Send the planner back with ``findings``, or fail the run if it has re-planned enough."""
    if replans < ctx.limits.max_replans:
        return {"findings": findings}
    return {
        "findings": findings,
        "outcome": "failed",
        "reason": "verification failed: " + "; ".join(findings),
    }


def _last_turn_results(state: AgentState) -> list[dict[str, Any]]:
    """The outcomes of the last assistant message's calls, as the model read them."""
    messages = state.get("messages", [])
    results = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            break
        if message.get("role") == "tool":
            results.append(json.loads(message["content"]))
    return list(reversed(results))


async def _after_plan(state: AgentState) -> str:
    if state.get("outcome"):
        return "finish"
    return "plan" if state.get("findings") else "propose"


async def _after_propose(state: AgentState) -> str:
    if state.get("outcome"):
        return "finish"
    return "verify_answer" if state.get("answer") is not None else "check"


async def _after_verify_step(state: AgentState) -> str:
    return "plan" if state.get("findings") else "propose"


async def _after_verify_answer(state: AgentState) -> str:
    return "finish" if state.get("outcome") else "plan"


def build_multi_graph() -> StateGraph[AgentState, AgentContext, Any, Any]:
    """The ``multi`` graph, not yet compiled."""
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("plan", plan)
    graph.add_node("propose", propose)
    graph.add_node("check", check)
    graph.add_node("act", act)
    graph.add_node("await_approval", await_approval)
    graph.add_node("verify_step", verify_step)
    graph.add_node("verify_answer", verify_answer)
    graph.add_node("finish", finish)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _after_plan, ["plan", "propose", "finish"])
    graph.add_conditional_edges("propose", _after_propose, ["check", "verify_answer", "finish"])
    graph.add_edge("check", "act")
    graph.add_conditional_edges(
        "act", after_act, {"await_approval": "await_approval", "next": "verify_step"}
    )
    graph.add_edge("await_approval", "act")
    graph.add_conditional_edges("verify_step", _after_verify_step, ["plan", "propose"])
    graph.add_conditional_edges("verify_answer", _after_verify_answer, ["plan", "finish"])
    graph.add_edge("finish", END)
    return graph
