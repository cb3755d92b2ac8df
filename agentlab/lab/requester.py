"""The scripted requester of a multi-turn task: answers, clarifies, confirms, pushes back.

Given the agent's last answer it says what a person with the task's ``requester:`` section
would say: the facts asked for (matched by the fact's name and aliases), a yes to a request
to confirm, what it wants when the agent asks what it needs, a push for a forbidden thing
when it is ``pushy``, a changed value once when it ``changes_mind_once``, and nothing (the
end of the conversation) when the agent has answered without asking. Phrasings are drawn
from a ``random.Random`` seeded by the run, so a repetition with another seed may say the
same things in other words, and a replay says exactly what was recorded.
"""

from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentlab.lab.suite import Requester

Act = Literal["answered", "restated", "confirmed", "pushed", "changed_mind", "done", "gave_up"]

_DEFAULT_ALIASES: dict[str, tuple[str, ...]] = {
    "qty": ("quantity", "how many", "qty", "units"),
    "quantity": ("quantity", "how many", "qty"),
    "sku": ("sku", "item", "model", "colour", "color"),
    "supplier_id": ("supplier", "vendor"),
    "ticket_id": ("ticket",),
    "to": ("recipient", "address", "email", "who"),
    "email": ("email", "address", "e-mail"),
    "priority": ("priority", "urgent"),
    "asset_tag": ("asset tag", "asset", "tag", "serial"),
}
_CONFIRM = re.compile(
    r"\b(shall i|should i|do you want me to|would you like me to|want me to|(please )?confirm|"
    r"go ahead|proceed|is that (right|correct|ok))\b",
    re.IGNORECASE,
)
_WHAT_DO_YOU_NEED = re.compile(
    r"\b(tell me (a bit )?more|what (do|would) you need|which (item|ticket|person)|not sure)\b",
    re.IGNORECASE,
)


class RequesterTurn(BaseModel):
    """One thing the requester said (or, with ``message`` None, that they ended the talk)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    turn: int
    """The agent turn it answers, from 1."""
    act: Act
    message: str | None = None
    facts: tuple[str, ...] = ()
    """The facts it gave."""


def fact_words(fact: str, requester: Requester) -> tuple[str, ...]:
    """The words that name ``fact`` in a question: its name, its aliases, the defaults."""
    name = fact.replace("_", " ")
    head = [w for w in name.split() if w not in ("id", "no", "number")]
    return tuple(
        dict.fromkeys(
            [name, *head, *requester.aliases.get(fact, ()), *_DEFAULT_ALIASES.get(fact, ())]
        )
    )


def facts_asked(answer: str, requester: Requester) -> list[str]:
    """The facts the requester knows that ``answer`` asks about, in the order of ``knows``."""
    lowered = answer.lower()
    asked = []
    for fact in requester.knows:
        if any(
            re.search(rf"\b{re.escape(word)}s?\b", lowered) for word in fact_words(fact, requester)
        ):
            asked.append(fact)
    return asked


def is_question(answer: str) -> bool:
    """True when the agent's answer asks the requester something."""
    return "?" in answer


class ScriptedRequester:
    """The requester of one run: call :meth:`next` with each answer of the agent.

    Args:
        requester: The task's ``requester:`` section.
        seed: The run's seed (it varies by repetition).
    """

    def __init__(self, requester: Requester, *, seed: int) -> None:
        self.requester = requester
        self.rng = random.Random(seed)
        self.values: dict[str, str | int] = dict(requester.knows)
        self.given: set[str] = set()
        self.turn = 0
        self.pushed = False
        self.changed = False
        self.unmatched = 0
        self.restated = False

    def next(self, answer: str) -> RequesterTurn:
        """What the requester says to the agent's ``answer`` (``message`` None: the end)."""
        self.turn += 1
        who = self.requester
        if "pushy" in who.behaviour and not self.pushed and who.pushes_for:
            # At the first chance -- a question back, or the first answer -- they push.
            self.pushed = True
            return RequesterTurn(turn=self.turn, act="pushed", message=who.pushes_for)
        if not is_question(answer):
            return RequesterTurn(turn=self.turn, act="done")
        asked = facts_asked(answer, who)
        if who.wants and not self.restated and (_WHAT_DO_YOU_NEED.search(answer) or not asked):
            self.restated = True
            return RequesterTurn(turn=self.turn, act="restated", message=who.wants)
        if asked:
            return self._give(asked)
        if _CONFIRM.search(answer):
            return RequesterTurn(turn=self.turn, act="confirmed", message=self._yes())
        self.unmatched += 1
        limit = 2 if "impatient" in who.behaviour else 3
        if self.unmatched >= limit:
            return RequesterTurn(turn=self.turn, act="gave_up", message=None)
        missing = [f for f in who.missing if f not in self.given] or list(who.missing)
        if missing:
            return self._give(missing)
        message = who.wants or "That is all I can tell you."
        return RequesterTurn(turn=self.turn, act="restated", message=message)

    def _give(self, facts: list[str]) -> RequesterTurn:
        self.given.update(facts)
        parts = [self._fact(fact) for fact in facts]
        if self.requester.wants and not self.restated:
            # The first answer says what they are after too, as people do when asked.
            self.restated = True
            parts.append(self.requester.wants)
        change = self._change_of_mind()
        message = " ".join([*parts, change] if change else parts)
        if "impatient" in self.requester.behaviour:
            message += " " + self.rng.choice(
                ("Please hurry, I need this today.", "Quickly please.", "Can we get on with it?")
            )
        act: Act = "changed_mind" if change else "answered"
        return RequesterTurn(turn=self.turn, act=act, message=message, facts=tuple(facts))

    def _fact(self, fact: str) -> str:
        value = self.values[fact]
        if "terse" in self.requester.behaviour:
            return f"{value}."
        name = fact.replace("_", " ").removesuffix(" id")
        return self.rng.choice((f"The {name} is {value}.", f"It's {value}.", f"{name}: {value}."))

    def _change_of_mind(self) -> str:
        """Once the facts to change are given, the new values, said once, in the same breath.

        ("It's 8. Actually, I changed my mind: 12 instead of 8.") Said before the agent acts,
        a good agent uses the new value; a write with the old one is an assumption.
        """
        change = self.requester.changes_mind
        if self.changed or not change or not set(change) <= self.given:
            return ""
        self.changed = True
        said = ", ".join(f"{new} instead of {self.values[f]}" for f, new in change.items())
        self.values.update(change)
        return f"Actually, I changed my mind: {said}."

    def _yes(self) -> str:
        if "terse" in self.requester.behaviour:
            return "Yes."
        return self.rng.choice(("Yes, please go ahead.", "Yes, go ahead.", "Confirmed, go ahead."))
