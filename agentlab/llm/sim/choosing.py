"""Choosing tools: which tool a request needs, and which tool can supply a missing value.

Tools are matched by meaning against their name (strongest), description and parameter
docs, never by a table of known names, so a tool nobody told the simulator about is chosen
as soon as its description fits the task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agentlab.llm.sim.reading import (
    ACTION_CONCEPTS,
    EMAIL,
    IDENT,
    Conversation,
    ToolOffer,
    clauses,
    concepts,
    content_words,
    is_how_to,
    is_question,
    properties,
    without_how_to,
)
from agentlab.llm.sim.schema_fill import payload, resolve

GOAL_THRESHOLD = 5.0
"""The least score at which a clause is taken to ask for a tool."""
_VAGUE_TEXT = """
    more some stuff thing things it that this them usual again same sort fix help
    something everything anything whatever one
"""
VAGUE = frozenset(_VAGUE_TEXT.split())
"""Words that name nothing in particular ("order some more")."""


@dataclass(frozen=True)
class Goal:
    """A tool the task asks for, and the words that ask for it."""

    tool: ToolOffer
    clause: str
    score: float


def score_tool(tool: ToolOffer, text: str) -> float:
    """How well ``tool`` fits ``text``: shared concepts, weighted by where the tool names them."""
    wanted = concepts(text)
    if is_how_to(text):
        # a procedure is looked up in the how-tos; "fix" in "how do I fix it" is no action
        wanted = concepts(without_how_to(text)) | {"knowledge"}
    implied = {"search", "knowledge"} - wanted if is_question(text) else set()
    name_c, desc_c, param_c = (
        concepts(tool.name_text),
        concepts(tool.description),
        concepts(tool.param_text),
    )
    score = 0.0
    for concept in wanted | implied:
        weight = (
            3 if concept in name_c else 2 if concept in desc_c else 1 if concept in param_c else 0
        )
        if weight and concept in ACTION_CONCEPTS:
            weight *= 2
        score += weight / 2 if concept in implied else weight
    if _fits_a_parameter(tool, text):
        score += 4
    if tool.is_write and is_question(text):
        score *= 0.5
    return score


def _fits_a_parameter(tool: ToolOffer, text: str) -> bool:
    """True when the text holds a value (an id, an address) that fits a patterned parameter.

    A strong sign the tool is meant: "TCK-000004" fits a ticket id, not a supplier id.
    """
    tokens = IDENT.findall(text) + EMAIL.findall(text)
    if not tokens:
        return False
    for pattern in _patterns(tool.parameters, tool.parameters):
        regex = re.compile(pattern)
        if any(regex.fullmatch(token) for token in tokens):
            return True
    return False


def _patterns(schema: dict[str, Any], root: dict[str, Any], depth: int = 0) -> list[str]:
    schema, _ = resolve(schema, root)
    found = [str(schema["pattern"])] if "pattern" in schema else []
    if depth > 4:
        return found
    for prop in properties(schema).values():
        found += _patterns(prop, root, depth + 1)
    if isinstance(schema.get("items"), dict):
        found += _patterns(schema["items"], root, depth + 1)
    return found


def rank_tools(tools: list[ToolOffer], text: str) -> list[tuple[float, ToolOffer]]:
    """Tools by fit, best first (ties keep the offered order)."""
    scored = [(score_tool(tool, text), index, tool) for index, tool in enumerate(tools)]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(score, tool) for score, _, tool in scored]


def rivals(tools: list[ToolOffer], text: str, chosen: ToolOffer) -> list[ToolOffer]:
    """The other tools of ``chosen``'s kind (read or write) that fit ``text`` nearly as well.

    The ones a model can take for it: both change a ticket, both search something. A tool
    that hardly fits is no rival; a model does not mistake it for the one it needs.
    """
    said = payload(text)
    ranked = rank_tools(tools, text.replace(said, " ") if said else text)
    top = next((score for score, tool in ranked if tool.name == chosen.name), 0.0)
    return [
        tool
        for score, tool in ranked
        if tool.name != chosen.name
        and tool.is_write == chosen.is_write
        and score >= GOAL_THRESHOLD / 2
        and score >= top / 2
    ]


def goals_of(task: str, tools: list[ToolOffer]) -> list[Goal]:
    """The tools the task asks for, in the order it asks, each once.

    Each goal's clause carries the clauses that asked for no tool, as context ("The printer
    is out of black toner. Reorder it from Nagoya." -> the toner is part of the order).
    """
    parts = clauses(task) or [task]
    best = []
    for part in parts:
        said = payload(part)
        ranked = rank_tools(tools, part.replace(said, " ") if said else part)
        if ranked and (ranked[0][0] >= GOAL_THRESHOLD or _answers_question(part, ranked)):
            best.append((part, ranked[0]))
        else:
            best.append((part, None))
    context = " ".join(part for part, pick in best if pick is None)
    goals: list[Goal] = []
    for part, pick in best:
        if pick is None or any(g.tool.name == pick[1].name for g in goals):
            continue
        clause = f"{part}. {context}".strip(" .") if context else part
        goals.append(Goal(pick[1], clause, pick[0]))
    return goals


def _answers_question(text: str, ranked: list[tuple[float, ToolOffer]]) -> bool:
    """A question is for the one read tool that fits it best, even loosely."""
    if not is_question(text) or ranked[0][1].is_write or ranked[0][0] < GOAL_THRESHOLD / 2:
        return False
    return len(ranked) == 1 or ranked[0][0] > ranked[1][0]


def is_vague(text: str) -> bool:
    """True when a request names nothing specific to act on ("order some more")."""
    specific = [
        w for w in content_words(text) if w not in VAGUE and not (concepts(w) & ACTION_CONCEPTS)
    ]
    return not specific and not EMAIL.search(text) and not IDENT.search(text)


def lookup_for(
    path: str, goal: ToolOffer, tools: list[ToolOffer], tried: set[str]
) -> ToolOffer | None:
    """A read tool that can supply the value at ``path`` of ``goal``'s arguments.

    A parameter's doc that names a tool ("look it up with find_supplier") decides; otherwise
    the read tool whose name and description share most with the parameter's name and doc.
    """
    name, doc = _param_doc(goal.parameters, path)
    readers = [t for t in tools if not t.is_write and t.name not in tried and t.name != goal.name]
    for tool in readers:
        if tool.name and tool.name in doc:
            return tool
    cue = concepts(f"{name.replace('_', ' ')} {doc}") - ACTION_CONCEPTS - {"id"}
    best: tuple[int, ToolOffer] | None = None
    for tool in readers:
        shared = len(cue & (concepts(tool.name_text) | concepts(tool.description)))
        if shared and (best is None or shared > best[0]):
            best = (shared, tool)
    return best[1] if best else None


def _param_doc(schema: dict[str, Any], path: str) -> tuple[str, str]:
    """The name and description of the parameter at a dotted path (``items.0.sku``)."""
    root = schema
    name, doc = path, ""
    node: dict[str, Any] = schema
    for part in path.split("."):
        node, _ = resolve(node, root)
        if part.isdigit():
            node = node.get("items") or {}
            continue
        prop = properties(node).get(part)
        if prop is None:
            break
        node = prop
        name = part
        resolved, _ = resolve(prop, root)
        doc = str(prop.get("description") or resolved.get("description") or "")
        if resolved.get("type") == "array":
            node = resolved
    return name, doc


def param_doc(schema: dict[str, Any], path: str) -> tuple[str, str]:
    """The name and description of the parameter at ``path``, for questions to the user."""
    return _param_doc(schema, path)


def goals_text(conversation: Conversation) -> str:
    """What a conversation's goals are read from: its first message, or all it said.

    A reply that restates the request ("Order 16 TONER-BK-05 from SUP-000103") replaces a
    vague first message; a reply that only gives a fact ("It's TCK-000006") fills arguments
    (see ``acting.fill``) and adds no goal of its own.
    """
    if not conversation.replies:
        return conversation.task
    goals = goals_of(conversation.first, conversation.tools)
    if goals and not all(is_vague(g.clause) for g in goals):
        return conversation.first
    return conversation.task
