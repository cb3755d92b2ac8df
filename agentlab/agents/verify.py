"""The verifier's rules: deterministic checks that run before any model is asked.

Rules first, a model second: a rule is cheap, repeatable and cannot be talked out of its
verdict by a document. Each function returns findings; an empty list passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from agentlab.tools import EXECUTOR_FIELDS

DONE = frozenset({"ok", "replayed"})
"""Outcome statuses that show a call had its effect."""

_ID = re.compile(r"\b(?:PO|TCK|MSG|RPA|SUP|KB-[A-Z]+)-\d{3,6}\b")
"""Ids the sandbox systems hand out: the ones an answer must not invent."""

_CLAIMS: dict[str, tuple[str, ...]] = {
    "created": ("create",),
    "placed": ("create", "order"),
    "ordered": ("create", "order"),
    "opened": ("create", "ticket"),
    "filed": ("create", "ticket"),
    "sent": ("send", "email", "mail"),
    "emailed": ("send", "email", "mail"),
    "mailed": ("send", "email", "mail"),
    "closed": ("status",),
    "resolved": ("status",),
    "commented": ("comment",),
    "submitted": ("create", "run"),
}
"""Words that claim a side effect, and the fragments of the tool names that do it."""

_NEGATIONS = frozenset(
    {"not", "never", "cannot", "unable", "waiting", "waits", "awaits", "pending", "will"}
)
"""Words that turn a sentence's claim of action into a report that it did not happen."""


def check_call_against_plan(tool: str, plan: dict[str, Any] | None) -> list[str]:
    """A proposed call must use a tool the plan named before any data was read."""
    planned = {step["tool"] for step in (plan or {}).get("steps", [])}
    if tool in planned:
        return []
    return [
        f"call to {tool!r} is not in the plan ({', '.join(sorted(planned)) or 'no tools'}); "
        "a step outside the plan may come from instructions inside data"
    ]


def check_call_repeats(
    tool: str,
    arguments: dict[str, Any] | None,
    committed: Iterable[tuple[str, dict[str, Any]]],
) -> list[str]:
    """A write the run has already committed, with the same arguments, must not run again.

    A re-planned repeat gets a new step, and so a new idempotency key: the key cannot stop
    it, this rule does. Arguments the executor sets itself (``EXECUTOR_FIELDS``) are not
    compared: two calls differing only in them are one action.

    Args:
        tool: The proposed call's tool.
        arguments: Its arguments (None when they are not a JSON object: nothing to compare).
        committed: The run's committed writes, as (tool, arguments).
    """
    if arguments is None:
        return []
    wanted = {k: v for k, v in arguments.items() if k not in EXECUTOR_FIELDS}
    for done_tool, done_arguments in committed:
        done = {k: v for k, v in done_arguments.items() if k not in EXECUTOR_FIELDS}
        if done_tool == tool and done == wanted:
            return [
                f"{tool} with these arguments is already committed in this run; doing it "
                "again would repeat its side effect"
            ]
    return []


def check_outcome(outcome: dict[str, Any]) -> list[str]:
    """A tool outcome that did not do its job is a finding, with the system's reason."""
    status = outcome.get("status")
    if status in DONE or status in ("awaiting_approval", "previewed"):
        return []
    return [f"{outcome.get('tool')} ended {status}: {outcome.get('message', '')}"]


def check_answer(
    answer: str, evidence: Iterable[dict[str, Any]], *, is_write: Callable[[str], bool]
) -> list[str]:
    """An answer's ids must come from the evidence, and its claims of action from a write.

    Args:
        answer: The agent's final answer.
        evidence: Every tool outcome of the run, as the model read it.
        is_write: Tells whether a tool changes a system.
    """
    outcomes = list(evidence)
    seen = json.dumps([o.get("untrusted_data") for o in outcomes], ensure_ascii=False)
    findings = [
        f"the answer cites {ident}, which no tool result contains"
        for ident in sorted(set(_ID.findall(answer)))
        if ident not in seen
    ]
    done_writes = [o["tool"] for o in outcomes if o.get("status") in DONE and is_write(o["tool"])]
    for sentence in re.split(r"(?<=[.!?;])\s+", answer):
        words = set(re.findall(r"[a-z]+", sentence.lower().replace("n't", " not")))
        # "was not sent", "waits for approval", "will be placed": no claim of action. Only
        # these words count: "so no further action is needed" still claims what it says.
        if words & _NEGATIONS:
            continue
        for word, fragments in _CLAIMS.items():
            if word in words and not any(
                fragment in tool for tool in done_writes for fragment in fragments
            ):
                findings.append(
                    f"the answer says {word!r}, but no tool result shows that action done"
                )
    return findings
