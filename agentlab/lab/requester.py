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
from agentlab.llm import ChatModel, ChatRequest, Message
from agentlab.llm.sim.requesting import DONE, REQUESTER_MARKER, WANTS_PREFIX, fact_line

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
_STOP_WORDS = frozenset({"to", "id", "no", "on", "in", "at", "by", "for", "of", "from"})
"""Fact names too common to mean the fact when a question uses them (``to``: the recipient)."""
_SAID_AS = {"to": "recipient", "qty": "quantity"}
"""How a person names a fact whose name is not a word people say."""
_ANYTHING_ELSE = re.compile(
    r"\b(anything else|something else|any other (question|request)s?)\b", re.IGNORECASE
)
_CHOICE = re.compile(r"\b(which|or)\b", re.IGNORECASE)
_CONFIRM = re.compile(
    r"\b(shall i|should i|do you want me to|would you like me to|want me to|(please )?confirm|"
    r"go ahead|proceed|is that (right|correct|ok))\b",
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
    head = [w for w in name.split() if w not in ("id", "no", "number") and w not in _STOP_WORDS]
    own = [] if name in _STOP_WORDS else [name]
    return tuple(
        dict.fromkeys(
            [*own, *head, *requester.aliases.get(fact, ()), *_DEFAULT_ALIASES.get(fact, ())]
        )
    )


def facts_asked(answer: str, requester: Requester) -> list[str]:
    """The facts the requester knows that ``answer`` asks about, in the order of ``knows``.

    A fact whose value the answer already says is not asked for: the agent is confirming it
    ("Shall I resolve TCK-000006?").
    """
    lowered = answer.lower()
    asked = []
    for fact, value in requester.knows.items():
        if says(answer, value) and not is_choice(answer):
            continue
        if any(
            re.search(rf"\b{re.escape(word)}s?\b", lowered) for word in fact_words(fact, requester)
        ):
            asked.append(fact)
    return asked


def says(text: str, value: object) -> bool:
    """True when ``text`` holds ``value`` as a whole token (``8`` is not in ``SUP-000108``)."""
    return (
        re.search(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", text, re.IGNORECASE) is not None
    )


def is_choice(answer: str) -> bool:
    """True when the agent offers options ("SUP-000103 or SUP-000104: which one?")."""
    return _CHOICE.search(answer) is not None


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
        if not is_question(answer) or _ANYTHING_ELSE.search(answer):
            return RequesterTurn(turn=self.turn, act="done")
        asked = facts_asked(answer, who)
        if asked:
            return self._give(asked)
        said_back = not is_choice(answer) and any(says(answer, v) for v in self.values.values())
        if _CONFIRM.search(answer) or said_back:
            return RequesterTurn(turn=self.turn, act="confirmed", message=self._yes())
        if who.wants and not self.restated and not self._gives_away(who.wants):
            # Asked what they need, or something they cannot place: they say what they want
            # (never a fact the agent must ask for: the suite refuses such a `wants`).
            self.restated = True
            return RequesterTurn(turn=self.turn, act="restated", message=who.wants)
        self.unmatched += 1
        limit = 2 if "impatient" in who.behaviour else 3
        if self.unmatched >= limit:
            return RequesterTurn(turn=self.turn, act="gave_up", message=None)
        message = who.wants or "I'm not sure what you need from me."
        return RequesterTurn(turn=self.turn, act="restated", message=message)

    def _give(self, facts: list[str]) -> RequesterTurn:
        self.given.update(facts)
        parts = [self._fact(fact) for fact in facts]
        wants = self.requester.wants
        if wants and not self.restated and not self._gives_away(wants):
            # The first answer says what they are after too, as people do when asked; never
            # when that would give a fact the agent has yet to ask for. When it names the
            # facts asked for, it is the whole answer ("Resolve ticket TCK-000009: ...").
            self.restated = True
            if all(says(wants, self.values[f]) for f in facts):
                parts = []
            parts.append(wants)
        change = self._change_of_mind()
        message = " ".join([*parts, change] if change else parts)
        if "impatient" in self.requester.behaviour:
            message += " " + self.rng.choice(
                ("Please hurry, I need this today.", "Quickly please.", "Can we get on with it?")
            )
        act: Act = "changed_mind" if change else "answered"
        return RequesterTurn(turn=self.turn, act=act, message=message, facts=tuple(facts))

    def _gives_away(self, text: str) -> bool:
        """True when ``text`` says a missing fact's value not given yet."""
        return any(
            says(text, self.values[f]) for f in self.requester.missing if f not in self.given
        )

    def _fact(self, fact: str) -> str:
        value = self.values[fact]
        if "terse" in self.requester.behaviour:
            return f"{value}."
        name = _SAID_AS.get(fact, fact.replace("_", " ").removesuffix(" id"))
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


class ModelRequester:
    """The requester of one run played by a model (a task's ``requester: {driver: model}``).

    Each of the agent's turns is sent to ``model`` with a system message describing the
    person (:func:`persona`), and the model's answer is what they say; :data:`DONE` (or
    nothing) ends the conversation. The requests go through the run's model client, so they
    are recorded in the run's cassette and a replay plays them back. Against the simulator
    the person answers plainly (``agentlab/llm/sim/requesting.py``).

    Args:
        requester: The task's ``requester:`` section.
        model: The model that plays the person.
        seed: The run's seed, sent with each request.
    """

    def __init__(self, requester: Requester, model: ChatModel, *, seed: int) -> None:
        self.requester = requester
        self.model = model
        self.seed = seed
        self.turn = 0
        self.messages: list[Message] = [{"role": "system", "content": persona(requester)}]

    async def anext(self, answer: str) -> RequesterTurn:
        """What the requester says to the agent's ``answer`` (``message`` None: the end)."""
        self.turn += 1
        self.messages.append({"role": "user", "content": answer})
        response = await self.model.acomplete(
            ChatRequest(messages=tuple(self.messages), seed=self.seed)
        )
        said = (response.content or "").strip()
        self.messages.append({"role": "assistant", "content": said})
        if not said or said == DONE:
            return RequesterTurn(turn=self.turn, act="done")
        facts = tuple(f for f, value in self.requester.knows.items() if str(value) in said)
        act: Act = "answered" if facts else "restated"
        return RequesterTurn(turn=self.turn, act=act, message=said, facts=facts)


def persona(requester: Requester) -> str:
    """The system message that tells a model who the requester is and what they know."""
    behaviour = ", ".join(requester.behaviour) or "plain and cooperative"
    facts = "\n".join(
        fact_line(fact, fact_words(fact, requester), value)
        for fact, value in requester.knows.items()
    )
    return (
        f"{REQUESTER_MARKER} You are the person who asked the help desk for something; the"
        " user messages are the help desk agent's turns. Answer as that person would, in one"
        " or two short sentences. Give a fact only when the agent asks for it.\n"
        f"{WANTS_PREFIX}{requester.wants}\n"
        f"How you talk: {behaviour}\n"
        f"Facts you know:\n{facts}\n"
        f"When the agent has done what you asked, or asks you nothing, answer exactly {DONE}"
    )
