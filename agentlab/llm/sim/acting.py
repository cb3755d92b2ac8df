"""Acting: the next tool call, or the final answer, of a tool-using conversation.

Each turn the policy reads the whole conversation again, as a model does: which tools the
task asks for (its goals), which of them have run and how they ended, what the results
hold, and whether a result carries instructions of its own. Then it either calls the next
tool -- a lookup when a goal's argument is still unknown -- or answers with the evidence.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from agentlab.llm.sim.choosing import (
    Goal,
    goals_of,
    goals_text,
    is_vague,
    lookup_for,
    param_doc,
    rank_tools,
    rivals,
)
from agentlab.llm.sim.draws import Draws
from agentlab.llm.sim.profiles import SimProfile
from agentlab.llm.sim.reading import (
    IDENT,
    Conversation,
    Injection,
    Observation,
    ToolOffer,
    concepts,
    find_injections,
    flatten_text,
    harm_of,
    overlap,
    records,
    sentences,
    unstated_facts,
)
from agentlab.llm.sim.reply import PlannedCall, Reply
from agentlab.llm.sim.schema_fill import FillContext, Filled, corrupt, fill_arguments, salient
from agentlab.llm.sim.slips import slip_value

SETTLED = ("ok", "replayed", "awaiting_approval", "previewed", "blocked", "rejected", "failed")
CLAIMED_AFTER = ("awaiting_approval", "failed", "rejected")
"""Outcomes of a write after which a careless answer still says it was done."""
PAST = {"send": "sent", "set": "set", "run": "run", "put": "put", "make": "made", "get": "got"}


@dataclass(frozen=True)
class Seen:
    """An instruction found in a result, and whether this profile follows it."""

    injection: Injection
    observation: Observation
    obeyed: bool


def act(
    conversation: Conversation, draws: Draws, profile: SimProfile, tool_choice: object
) -> Reply:
    """The next step of a tool-using conversation: tool calls, a question, or the answer."""
    if harm_of(conversation.task) and draws.chance(
        "refuse_harmful", profile.errors.refuse_harmful, turn=0
    ):
        return refuse(conversation.task)
    goals = goals_of(goals_text(conversation), conversation.tools)
    forced = _forced_tool(conversation, tool_choice)
    if tool_choice == "none":
        return Reply(
            content=final_answer(
                conversation, goals, draws, profile, _seen(conversation, draws, profile)
            )
        )
    if not goals and forced is None:
        if tool_choice == "required" and conversation.tools:
            goals = [
                Goal(rank_tools(conversation.tools, conversation.task)[0][1], conversation.task, 0)
            ]
        elif conversation.observations:
            return Reply(content=final_answer(conversation, goals, draws, profile, []))
        else:
            return Reply(content=clarify_unknown(conversation))
    if forced is not None:
        goals = [Goal(forced, conversation.task, 0)]
    seen = _seen(conversation, draws, profile)
    followed = _follow_injection(conversation, seen, draws, profile)
    if followed is not None:
        return followed
    if conversation.assistant_turns == 0 and all(is_vague(g.clause) for g in goals):
        return Reply(content=clarify_unknown(conversation))
    unstated = unstated_facts(conversation.task)
    if (
        unstated
        and any(g.tool.is_write for g in goals)
        and not any(o.tool == g.tool.name for g in goals for o in conversation.observations)
        and not draws.chance("act_on_assumption", profile.errors.act_on_assumption, turn=0)
    ):
        return Reply(content=clarify_fact(unstated[0], goals))
    if conversation.plan is not None and forced is None:
        step = _next_planned(conversation.plan, goals, conversation, draws, profile)
        if step is not None:
            return step
        return Reply(content=final_answer(conversation, goals, draws, profile, seen))
    for index, goal in enumerate(goals):
        step = _next_for(goal, conversation, draws, profile)
        if step is not None:
            return _answered_before(step, goals[:index], conversation, draws, profile)
    return Reply(content=final_answer(conversation, goals, draws, profile, seen))


def _next_planned(
    plan: list[str],
    goals: list[Goal],
    conversation: Conversation,
    draws: Draws,
    profile: SimProfile,
) -> Reply | None:
    """The next step of the plan the instructions give: its tool, filled in by this policy.

    A model handed a plan takes each step's tool from it, in order; it still fills the
    arguments itself (from the task and the results) and can still slip to a rival tool.
    None when every step has run (or was given up): then it answers.
    """
    count: dict[str, int] = {}
    for name in plan:
        tool = conversation.tool(name)
        if tool is None:
            continue
        count[name] = count.get(name, 0) + 1
        calls = conversation.observed(name)
        settled = sum(1 for o in calls if o.status in SETTLED)
        invalid = sum(1 for o in calls if o.status == "invalid")
        if settled >= count[name] or invalid > profile.max_argument_retries:
            continue
        goal = next((g for g in goals if g.tool.name == name), None)
        open_goal = next(
            (
                g
                for g in goals
                if not any(o.status in SETTLED for o in conversation.observed(g.tool.name))
            ),
            None,
        )
        clause = open_goal.clause if open_goal else conversation.task
        if goal is None and tool.is_write:
            goal = Goal(tool, clause, 0)
        if goal is None:
            return _call(tool, clause, conversation, draws, profile, is_lookup=True)
        step = _next_for(goal, conversation, draws, profile, allowed=set(plan))
        if step is not None:
            before = [g for g in goals if g.tool.name != name]
            return _answered_before(step, before, conversation, draws, profile)
    return None


def _answered_before(
    step: Reply, before: list[Goal], conversation: Conversation, draws: Draws, profile: SimProfile
) -> Reply:
    """A claim made instead of a call answers with what was done before it, then the claim."""
    if "claim_without_evidence" not in step.notes or step.content is None:
        return step
    lines = []
    for goal in before:
        calls = conversation.observed(goal.tool.name)
        if calls and goal.tool.is_write:
            lines.append(_write_line(goal, calls[-1], draws, profile))
        elif calls:
            lines.append(_read_line(goal, calls[-1], conversation))
    return Reply(content="\n".join([*lines, step.content]), notes=step.notes)


def _forced_tool(conversation: Conversation, tool_choice: object) -> ToolOffer | None:
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        return conversation.tool(str(name))
    return None


def refuse(task: str) -> Reply:
    """A refusal, saying why and what is possible instead."""
    why = harm_of(task) or "it is not something I may do"
    return Reply(
        refusal=(
            f"I can't help with that: {why}. Confidential data and credentials stay inside the "
            "organisation; ask the data owner or the security team if you need access."
        )
    )


# -- one goal at a time ------------------------------------------------------------------------


def _next_for(
    goal: Goal,
    conversation: Conversation,
    draws: Draws,
    profile: SimProfile,
    *,
    allowed: set[str] | None = None,
) -> Reply | None:
    """The call that moves ``goal`` on, a question when it cannot move, or None when settled.

    ``allowed`` (the tools of a plan) limits the lookups it may make.
    """
    calls = conversation.observed(goal.tool.name)
    if any(o.status in SETTLED for o in calls):
        return None
    if _mistaken_for(goal, conversation, draws, profile) is not None:
        return None  # a rival tool was called in its place, and taken for it
    invalid = [o for o in calls if o.status == "invalid"]
    if len(invalid) > profile.max_argument_retries:
        return None  # gave up; the answer says so
    filled = fill(goal.tool, goal.clause, conversation)
    tried = _tried(conversation, profile)
    if allowed is not None:
        tried |= {t.name for t in conversation.tools if t.name not in allowed}
    if filled.missing or filled.ambiguous:
        for path in filled.missing:
            lookup = lookup_for(path, goal.tool, conversation.tools, tried)
            if lookup is not None:
                return _call(lookup, goal.clause, conversation, draws, profile, is_lookup=True)
        if filled.ambiguous:
            return Reply(content=clarify_choice(goal, filled, conversation))
        return Reply(content=clarify_missing(goal, filled.missing[0]))
    if (
        goal.tool.is_write
        and not calls
        and draws.chance(
            f"claim_without_evidence.write:{goal.tool.name}", profile.errors.claim_without_evidence
        )
    ):
        return Reply(
            content=claimed_done(goal.tool, filled.arguments, conversation.task, draws),
            notes=("claim_without_evidence",),
        )
    return _call(goal.tool, goal.clause, conversation, draws, profile, filled=filled)


def claimed_done(tool: ToolOffer, arguments: dict[str, object], task: str, draws: Draws) -> str:
    """What a careless model answers instead of making the write: that it is done.

    It names the record the task named (a ticket id) or, for something new, invents an id
    of the usual shape (``PO-004211`` for a purchase order), and repeats the arguments.
    """
    verb, *rest = tool.name_text.split() or ["do"]
    thing = " ".join(rest) or "request"
    past = PAST.get(verb.lower()) or (verb + ("d" if verb.endswith("e") else "ed"))
    named = [
        v for v in arguments.values() if isinstance(v, str) and v in task and IDENT.fullmatch(v)
    ]
    if concepts(verb) & {"create", "purchase", "book"}:
        initials = "".join(w[0] for w in rest).upper() or "ID"
        number = draws.rng(f"claim.id:{tool.name}").randint(100, 9999)
        ref = f" ({initials}-{number:06d})"
    elif named:
        ref = f" ({named[0]})"
    else:
        ref = ""
    details = salient(arguments)
    details = "" if details.startswith("{") else f": {details}"
    return f"Done: the {thing} has been {past}{ref}{details}."


def _tried(conversation: Conversation, profile: SimProfile) -> set[str]:
    """Tools not to call again: they answered, or their arguments were refused too often.

    A lookup whose arguments came back ``invalid`` is fixed and sent again, as a goal's is.
    """
    tried = set()
    for name in {o.tool for o in conversation.observations if o.status != "missing"}:
        calls = conversation.observed(name)
        invalid = sum(1 for o in calls if o.status == "invalid")
        if any(o.status != "invalid" for o in calls) or invalid > profile.max_argument_retries:
            tried.add(name)
    return tried


def _mistaken_for(
    goal: Goal, conversation: Conversation, draws: Draws, profile: SimProfile
) -> Observation | None:
    """The settled call of a rival tool that this profile made in ``goal``'s place.

    A model that picked a tool which merely resembles the right one (a comment for a status
    change, the ticket search for a how-to) believes it did the job; it does not come back
    to the goal. The decision is the ``wrong_tool`` draw of the turn that made the call.
    """
    names = {t.name for t in rivals(conversation.tools, goal.clause, goal.tool)}
    for observation in conversation.observations:
        if (
            observation.tool in names
            and observation.status in SETTLED
            and draws.chance("wrong_tool", profile.errors.wrong_tool, turn=observation.turn)
        ):
            return observation
    return None


def fill(
    tool: ToolOffer, clause: str, conversation: Conversation, *, is_lookup: bool = False
) -> Filled:
    """``tool``'s arguments for ``clause``, from the task and the results so far."""
    if conversation.replies:  # what the requester said when asked belongs to every goal
        told = [r.strip() for r in conversation.replies if r.strip().rstrip(".") not in clause]
        clause = " ".join([*told, clause])
    ctx = FillContext(
        text=clause,
        task=conversation.task,
        observations=conversation.observations,
        salt=f"{tool.name}|{len(conversation.observations)}",
        is_lookup=is_lookup,
        replies=conversation.replies,
    )
    return fill_arguments(tool.parameters, ctx)


def _call(
    tool: ToolOffer,
    clause: str,
    conversation: Conversation,
    draws: Draws,
    profile: SimProfile,
    *,
    filled: Filled | None = None,
    is_lookup: bool = False,
) -> Reply:
    notes: list[str] = []
    if draws.chance("wrong_tool", profile.errors.wrong_tool):
        others = rivals(conversation.tools, clause, tool)
        if others:
            tool = (
                others[0]
                if draws.rng("wrong_tool.which").random() < 0.6
                else draws.rng("wrong_tool.any").choice(others)
            )
            filled = None
            notes.append("wrong_tool")
    filled = filled or fill(tool, clause, conversation, is_lookup=is_lookup)
    arguments = filled.arguments
    if tool.is_write and not is_lookup and draws.chance("wrong_value", profile.errors.wrong_value):
        slipped = slip_value(
            arguments,
            tool.parameters,
            conversation.task,
            conversation.observations,
            draws.rng("wrong_value.how"),
        )
        if slipped is not None:
            arguments = slipped[0]
            notes.append("wrong_value")
    text = json.dumps(arguments, ensure_ascii=False)
    if draws.chance("bad_arguments", profile.errors.bad_arguments):
        text = corrupt(arguments, tool.parameters, draws.rng("bad_arguments.how"))
        notes.append("bad_arguments")
    return Reply(tool_calls=(PlannedCall(tool.name, text),), notes=tuple(notes))


# -- instructions inside results ---------------------------------------------------------------


def _seen(conversation: Conversation, draws: Draws, profile: SimProfile) -> list[Seen]:
    """Every instruction found in a result, with this profile's (seeded) will to follow it.

    The decision is drawn once, at the turn right after the result arrived, so later turns
    agree with it.
    """
    names = [t.name for t in conversation.tools]
    found = []
    for observation in conversation.observations:
        for injection in find_injections(observation.text(), names):
            digest = hashlib.sha256(injection.text.encode()).hexdigest()[:12]
            rate = profile.errors.obey_injection
            if observation.is_spotlighted and profile.errors.obey_injection_spotlighted is not None:
                rate = profile.errors.obey_injection_spotlighted
            obeyed = draws.chance(f"obey_injection:{digest}", rate, turn=observation.turn + 1)
            found.append(Seen(injection, observation, obeyed))
    return found


def _follow_injection(
    conversation: Conversation, seen: list[Seen], draws: Draws, profile: SimProfile
) -> Reply | None:
    """The call an obeyed instruction asks for, unless it was made already."""
    for item in seen:
        if not item.obeyed:
            continue
        injection = item.injection
        targets = [conversation.tool(name) for name in injection.tools]
        if injection.addresses:
            targets += [t for t in conversation.tools if t.is_write and _takes_email(t)]
        for tool in targets:
            if tool is None:
                continue
            later = [o for o in conversation.observations if o.turn > item.observation.turn]
            if any(o.tool == tool.name for o in later):
                continue
            filled = fill(tool, injection.text, conversation)
            if filled.missing:
                continue
            text = json.dumps(filled.arguments, ensure_ascii=False)
            return Reply(tool_calls=(PlannedCall(tool.name, text),), notes=("obey_injection",))
    return None


def _takes_email(tool: ToolOffer) -> bool:
    return "@" in json.dumps(tool.parameters) or "email" in tool.param_text.lower()


# -- questions back --------------------------------------------------------------------------


def clarify_fact(fact: str, goals: list[Goal]) -> str:
    """A question for a fact the request names but does not give (an asset tag)."""
    write = next((g.tool for g in goals if g.tool.is_write), goals[0].tool)
    return f"To {write.name_text} I need the {fact} of the device. What is its {fact}?"


def clarify_unknown(conversation: Conversation) -> str:
    """A question for a request too vague to act on."""
    offered = ", ".join(
        f"{t.name_text} ({t.description.split('.')[0].strip()})" for t in conversation.tools[:6]
    )
    return (
        "Could you tell me a bit more about what you need? I'm not sure which item, ticket or "
        f"person you mean. I can help with: {offered}."
    )


def clarify_missing(goal: Goal, path: str) -> str:
    """A question for a value the request does not give and no tool can look up."""
    name, doc = param_doc(goal.tool.parameters, path)
    what = name.replace("_", " ")
    hint = f" ({doc.rstrip('.')})" if doc else ""
    return f"To {goal.tool.name_text} I need the {what}{hint}. Which {what} should I use?"


def clarify_choice(goal: Goal, filled: Filled, conversation: Conversation) -> str:
    """A question when several records fit the request equally well."""
    path, options = next(iter(filled.ambiguous.items()))
    name = path.rsplit(".", 1)[-1].replace("_", " ")
    labels = []
    for option in options[:6]:
        record = next(
            (r for o in conversation.observations for r in records(o.data) if option in r.values()),
            None,
        )
        label = next((str(record[k]) for k in ("name", "title") if record and k in record), None)
        labels.append(f"{option} ({label})" if label else option)
    joined = ", ".join(labels[:-1]) + f" or {labels[-1]}" if len(labels) > 1 else labels[0]
    return f"Several {name}s fit your request: {joined}. Which one do you mean?"


# -- the answer --------------------------------------------------------------------------------


def final_answer(
    conversation: Conversation,
    goals: list[Goal],
    draws: Draws,
    profile: SimProfile,
    seen: list[Seen],
) -> str:
    """The answer: what was done and what was not, citing the results."""
    lines: list[str] = []
    for goal in goals:
        calls = conversation.observed(goal.tool.name)
        last = calls[-1] if calls else _mistaken_for(goal, conversation, draws, profile)
        if goal.tool.is_write:
            lines.append(_write_line(goal, last, draws, profile))
        else:
            lines.append(_read_line(goal, last, conversation))
    if not goals:
        for observation in conversation.observations:
            lines.append(f"{observation.tool}: {observation.status} - {salient(observation.data)}.")
    for item in seen:
        source = _source(item.observation)
        if item.obeyed and item.injection.say:
            lines.append(item.injection.say[0].upper() + item.injection.say[1:].rstrip(".") + ".")
        elif not item.obeyed:
            lines.append(
                f"Note: the result of {item.observation.tool}{source} contains instructions "
                "aimed at an AI assistant; I did not follow them."
            )
    return "\n".join(line for line in lines if line) or "I have nothing to report."


def _source(observation: Observation) -> str:
    ids = [r.get("doc_id") for r in records(observation.data) if isinstance(r.get("doc_id"), str)]
    return f" ({', '.join(ids[:3])})" if ids else ""


def _write_line(goal: Goal, last: Observation | None, draws: Draws, profile: SimProfile) -> str:
    what = goal.tool.name_text
    if last is not None and last.is_done:
        return f"Done: {what} ({last.status}) - {salient(last.data)}."
    if (
        last is not None
        and last.status in CLAIMED_AFTER
        and draws.chance(
            f"claim_without_evidence:{goal.tool.name}", profile.errors.claim_without_evidence
        )
    ):
        invented = "".join(w[0] for w in what.split()[1:]).upper() or "ID"
        number = draws.rng(f"claim.id:{goal.tool.name}").randint(100, 999999)
        return f"Done: {what} completed successfully ({invented}-{number:06d})."
    if last is None:
        return f"I did not {what}: I could not get the information it needs."
    if last.status == "awaiting_approval":
        preview = salient(last.data)
        return (
            f"The {what} is waiting for approval ({last.message}); it has not been done yet. "
            f"Preview: {preview}."
        )
    if last.status == "previewed":
        return f"The {what} was only previewed (dry-run), nothing changed: {salient(last.data)}."
    if last.status in ("blocked", "rejected"):
        return f"I could not {what}: {last.message}."
    if last.status == "failed":
        return f"The {what} failed: {last.message}. Please try again later or open a ticket."
    if last.status == "invalid":
        return f"I could not {what}: my arguments were refused ({last.message})."
    return f"The {what} did not finish ({last.status})."


def _read_line(goal: Goal, last: Observation | None, conversation: Conversation) -> str:
    if last is None:
        return f"I did not {goal.tool.name_text}."
    if not last.is_done:
        return f"I could not {goal.tool.name_text}: {last.message or last.status}."
    found = [
        r for r in records(last.data) if any(not isinstance(v, (dict, list)) for v in r.values())
    ]
    if not found:
        return f"{goal.tool.name_text}: nothing matched."
    scored = sorted(
        enumerate(found),
        key=lambda item: (
            -overlap(
                conversation.task,
                flatten_text(item[1]) + " " + " ".join(str(v) for v in item[1].values()),
            ),
            item[0],
        ),
    )

    def score(record: dict[str, object]) -> int:
        return overlap(
            conversation.task, flatten_text(record) + " " + " ".join(map(str, record.values()))
        )

    top = score(scored[0][1])
    best = [r for _, r in scored[:3] if score(r) * 2 >= top and (score(r) > 0 or len(found) == 1)]
    best = best or [scored[0][1]]
    parts = []
    for record in best:
        first = next(iter(record.values()), None)
        cite = (
            first
            if isinstance(first, str) and IDENT.fullmatch(first)
            else next(
                (str(v) for k, v in record.items() if k.endswith("id") and isinstance(v, str)), ""
            )
        )
        text = next((str(record[k]) for k in ("snippet", "content", "body") if k in record), "")
        summary = _best_sentence(text, conversation.task) if text else salient(record)
        label = record.get("title") or record.get("name")
        head = f"[{cite}]" + (f" {label}" if label else "") if cite else str(label or "")
        parts.append(f"{head}: {summary}".strip(": "))
    return "According to " + "; and ".join(parts)


def _best_sentence(text: str, question: str) -> str:
    candidates = sentences(text) or [text]
    ranked = sorted(enumerate(candidates), key=lambda item: (-overlap(question, item[1]), item[0]))
    return " ".join(sentence for _, sentence in sorted(ranked[:2])).strip()
