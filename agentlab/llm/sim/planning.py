"""Structured answers: a plan before anything runs, and a verdict on a finished answer.

Both are recognised by the request's ``response_format.json_schema.name`` (``plan`` or
``verdict``), as a real model follows the schema it is given, and answer in the JSON of
:class:`agentlab.llm.structured.Plan` or :class:`~agentlab.llm.structured.Verdict`.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from agentlab.llm.sim.acting import fill, refuse
from agentlab.llm.sim.choosing import (
    goals_of,
    goals_text,
    is_vague,
    lookup_for,
    param_doc,
    rivals,
)
from agentlab.llm.sim.draws import Draws
from agentlab.llm.sim.profiles import SimProfile
from agentlab.llm.sim.reading import (
    ACTION_CONCEPTS,
    IDENT,
    Conversation,
    ToolOffer,
    concepts,
    emails,
    find_injections,
    flatten_text,
    harm_of,
    identifiers,
    records,
    sentences,
    text_of,
    unstated_facts,
)
from agentlab.llm.sim.reply import Reply
from agentlab.llm.sim.schema_fill import asked_status, said_quantity
from agentlab.llm.structured import Plan, PlannedStep, Verdict

CLAIM = re.compile(
    r"\b(created|placed|ordered|reordered|restocked|sent|emailed|notified|forwarded|opened|"
    r"raised|closed|resolved|commented|added|updated|submitted|booked|scheduled|completed|done)\b",
    re.IGNORECASE,
)
FIRST_HAND = re.compile(
    r"\b(I|I've|we|has been|have been|was|were|is now|are now|successfully)\b|^done\b",
    re.IGNORECASE,
)
HEDGE = re.compile(
    r"\b(not|n't|waiting|awaiting|await|approval|once|will|would|could|cannot|unable|failed|"
    r"blocked|rejected|preview|previewed|dry-run|if|did not)\b",
    re.IGNORECASE,
)


# -- plans -------------------------------------------------------------------------------------


def plan(conversation: Conversation, draws: Draws, profile: SimProfile) -> Reply:
    """The tool steps the task needs, or a clarifying question; re-plans after findings."""
    if harm_of(conversation.task) and draws.chance(
        "refuse_harmful", profile.errors.refuse_harmful, turn=0
    ):
        return refuse(conversation.task)
    goals = goals_of(goals_text(conversation), conversation.tools)
    if not goals or all(is_vague(g.clause) for g in goals):
        question = "Which item, ticket or person is this about, and what should be done with it?"
        return _plan_reply(Plan(steps=[], clarification=question))
    unstated = unstated_facts(conversation.task)
    if (
        unstated
        and not conversation.findings
        and any(g.tool.is_write for g in goals)
        and not draws.chance("act_on_assumption", profile.errors.act_on_assumption, turn=0)
    ):
        question = f"What is the {unstated[0]} of the device?"
        return _plan_reply(Plan(steps=[], clarification=question))
    done = {o.tool for o in conversation.observations if o.is_done} | {
        str(r.get("tool")) for r in conversation.reported if r.get("status") in ("ok", "replayed")
    }
    done_tools = [t for t in conversation.tools if t.name in done]
    named = {
        t.name
        for t in conversation.tools
        if any(t.name in f or t.name_text in f for f in conversation.findings)
    }
    named &= {g.tool.name for g in goals}  # a finding about a lookup still leaves its goal
    steps: list[PlannedStep] = []
    tried: set[str] = set(done)
    for goal in goals:
        if goal.tool.name in done:
            continue
        if named and goal.tool.name not in named and conversation.findings:
            continue
        filled = fill(goal.tool, goal.clause, conversation)
        for path in filled.missing:
            if lookup_for(path, goal.tool, conversation.tools, set()) in done_tools:
                continue  # looked up already: the acting model has the result
            lookup = lookup_for(path, goal.tool, conversation.tools, tried)
            if lookup is None:
                if not steps:
                    name, doc = param_doc(goal.tool.parameters, path)
                    question = f"Which {name.replace('_', ' ')} should I use ({doc.rstrip('.')})?"
                    return _plan_reply(Plan(steps=[], clarification=question))
                continue
            tried.add(lookup.name)
            what = path.rsplit(".", 1)[-1].replace("_", " ")
            steps.append(PlannedStep(tool=lookup.name, purpose=f"look up the {what}"))
        steps.append(PlannedStep(tool=goal.tool.name, purpose=_purpose(goal.clause)))
    notes: tuple[str, ...] = ()
    # A re-plan is a new attempt: its slip is drawn anew (the first plan's draw is kept).
    again = f":replan{len(conversation.reported)}" if conversation.findings else ""
    if steps and draws.chance(f"wrong_tool{again}", profile.errors.wrong_tool):
        index = draws.rng(f"wrong_tool.step{again}").randrange(len(steps))
        planned = conversation.tool(steps[index].tool)
        others = rivals(conversation.tools, conversation.task, planned) if planned else []
        if others:
            steps[index] = PlannedStep(tool=others[0].name, purpose=steps[index].purpose)
            notes = ("wrong_tool",)
    reply = _plan_reply(Plan(steps=steps, clarification=None))
    return Reply(content=reply.content, notes=notes)


def _purpose(clause: str) -> str:
    text = " ".join(clause.split())
    return text if len(text) <= 80 else text[:79].rstrip() + "…"


def _plan_reply(value: Plan) -> Reply:
    return Reply(content=value.model_dump_json())


# -- verdicts ----------------------------------------------------------------------------------


def verdict(conversation: Conversation, draws: Draws, profile: SimProfile) -> Reply:
    """Check an answer's claims against the evidence; profiles miss findings at a rate."""
    task, answer, evidence = _read_case(conversation.last_user)
    findings = check_answer(task, answer, evidence, conversation.tools)
    notes: tuple[str, ...] = ()
    # The case's own task seeds the miss, not the whole case: the evidence carries the
    # systems' timestamps, which would make the same run's verdict differ from one day to
    # the next.
    draws = replace(draws, task=task)
    if findings and draws.chance("verifier_miss", profile.errors.verifier_miss):
        findings, notes = [], ("verifier_miss",)
    result = Verdict(passed=not findings, findings=findings)
    return Reply(content=result.model_dump_json(), notes=notes)


def _read_case(text: str) -> tuple[str, str, list[dict[str, Any]]]:
    try:
        case = json.loads(text)
    except ValueError:
        return text, "", []
    if not isinstance(case, dict):
        return text, "", []
    evidence = []
    for raw in case.get("evidence") or []:
        item = raw
        if isinstance(raw, str):
            try:
                item = json.loads(raw)
            except ValueError:
                item = {"tool": "?", "status": "ok", "message": "", "untrusted_data": raw}
        if isinstance(item, dict):
            evidence.append(item)
    return text_of(case.get("task")), text_of(case.get("answer")), evidence


def check_answer(
    task: str, answer: str, evidence: list[dict[str, Any]], tools: list[ToolOffer]
) -> list[str]:
    """What in ``answer`` the evidence does not back, one finding each.

    Args:
        task: What was asked.
        answer: The answer to check.
        evidence: The tool outcomes (``ToolOutcome.for_model()`` objects) of the run.
        tools: The tools the run had, when the request offers them: a write the task asks
            for that no outcome shows is a finding too.
    """
    findings: list[str] = []
    attempted = {str(item.get("tool")) for item in evidence}
    if "?" not in answer:
        for goal in goals_of(task, tools):
            if goal.tool.is_write and goal.tool.name not in attempted:
                findings.append(
                    f"the task asks to {goal.tool.name_text}, but no tool result shows an attempt"
                )
    proof = json.dumps(evidence, ensure_ascii=False)
    for token in identifiers(answer):
        if re.search(r"\d", token) and token not in proof and token not in task:
            findings.append(f"{token} is named in the answer but appears in no tool result")
    for sentence in sentences(answer):
        if not CLAIM.search(sentence) or HEDGE.search(sentence):
            continue
        if not FIRST_HAND.search(sentence):
            continue
        finding = _unbacked_claim(sentence, evidence)
        if finding:
            findings.append(finding)
    for item in evidence:
        data = item.get("untrusted_data")
        if not _is_write(item):
            continue
        for address in _recipients(data):
            if address.lower() not in task.lower():
                findings.append(
                    f"{item.get('tool')} acted on {address}, which the task does not mention "
                    "(an instruction found in data?)"
                )
                break
    findings += write_mismatches(task, evidence)
    names = [str(item.get("tool", "")) for item in evidence]
    for item in evidence:
        for injection in find_injections(flatten_text(item.get("untrusted_data")), names):
            if injection.say and injection.say.lower()[:40] in answer.lower():
                findings.append(
                    f"the answer repeats an instruction found in the result of {item.get('tool')}"
                )
    return list(dict.fromkeys(findings))


def write_mismatches(task: str, evidence: list[dict[str, Any]]) -> list[str]:
    """Committed writes whose data differs from what the task named, one finding each.

    A value a schema accepts can still be the wrong one: an order for 61 where the task
    says 16, the neighbouring ticket, another SKU. For every write that took effect (``ok``
    or ``replayed``), the ids, quantities and statuses of its result are held against the
    task: an id of the same kind as one the task names (``TCK-…``, ``TONER-…``) must be that
    one; the quantity next to an id the task names must be the task's; a record of an id
    the task names must have the status the task asks for. Recipients are checked with the
    other writes' (an address the task never named).
    """
    named = identifiers(task)
    kinds: dict[str, list[str]] = {}
    for token in named:
        kinds.setdefault(token.split("-", 1)[0], []).append(token)
    asked = asked_status(task)
    findings = []
    for item in evidence:
        if not _is_write(item) or item.get("status") not in ("ok", "replayed"):
            continue
        data = item["untrusted_data"]
        result = data.get("result", data)
        tool = item.get("tool")
        written = json.dumps(result, ensure_ascii=False)
        for record in records(result):
            ids = {k: v for k, v in record.items() if isinstance(v, str) and IDENT.fullmatch(v)}
            for key, value in ids.items():
                wanted = kinds.get(value.split("-", 1)[0], [])
                if value in task or not wanted or any(w in written for w in wanted):
                    continue
                asked_for = " or ".join(wanted)
                findings.append(f"{tool} wrote {key} {value}, the task asked for {asked_for}")
            for key, value in record.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if not re.fullmatch(r"qty|quantity|count|units|amount_units", key):
                    continue
                for ident in (v for v in ids.values() if v in task):
                    said = said_quantity(task, ident)
                    if said is not None and said != value:
                        findings.append(
                            f"{tool} has {value:g} x {ident}, the task asked for {said:g}"
                        )
            status = record.get("status")
            if (
                asked
                and isinstance(status, str)
                and status != asked
                and any(v in task for v in ids.values())
            ):
                findings.append(
                    f"{tool} left {next(v for v in ids.values() if v in task)} {status}, "
                    f"the task asked for {asked}"
                )
    return findings


def _recipients(data: Any) -> list[str]:
    """Addresses a write sent something to (``to``, ``cc``, ``recipients`` ...)."""
    found = []
    for record in records(data):
        for key, value in record.items():
            if re.fullmatch(r"to|cc|bcc|recipients?|accepted", key):
                found += emails(flatten_text(value))
    return list(dict.fromkeys(found))


def _is_write(item: dict[str, Any]) -> bool:
    data = item.get("untrusted_data")
    return (
        isinstance(data, dict)
        and "diff" in data
        and item.get("status")
        in (
            "ok",
            "replayed",
            "awaiting_approval",
            "previewed",
        )
    )


def _unbacked_claim(sentence: str, evidence: list[dict[str, Any]]) -> str | None:
    """A finding when a sentence says something was done and no write result shows it."""
    claimed = (concepts(sentence) & ACTION_CONCEPTS) - {"search"}
    writes = [item for item in evidence if _is_write(item)]
    related = [
        item
        for item in writes
        if not claimed or claimed & concepts(str(item.get("tool", "")).replace("_", " "))
    ]
    if any(item.get("status") in ("ok", "replayed") for item in related):
        return None
    short = " ".join(sentence.split())[:100]
    if related:
        item = related[-1]
        return (
            f"the answer says {short!r}, but {item.get('tool')} is {item.get('status')}, not done"
        )
    return f"the answer says {short!r}, but no tool result shows it was done"
