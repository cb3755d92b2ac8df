"""Playing a task's requester: a person who answers what the agent asks, from facts they know.

The lab's model-played requester (a task's ``requester: {driver: model}``) sends a chat
request whose system message starts with :data:`REQUESTER_MARKER` and lists what the person
wants and the facts they know, one :func:`fact_line` each; every user message is one of the
agent's turns. A real model reads the same prompt as instructions. The simulator plays the
person plainly, and only when the agent's turn asks something: the facts whose words it
uses (unless it already says their values), a yes to a request to confirm, what they want
when asked anything else; :data:`DONE` once the agent stops asking.
"""

from __future__ import annotations

import re

from agentlab.llm.sim.reply import Reply

REQUESTER_MARKER = "[agentlab requester]"
"""How the system message of a requester's request starts."""
DONE = "[done]"
"""The whole answer of a requester with nothing more to say."""
WANTS_PREFIX = "What you want: "

_FACT = re.compile(r"^- (?P<name>[a-z][a-z0-9_]*) \(asked as: (?P<words>[^)]*)\): (?P<value>.+)$")
_ANYTHING_ELSE = re.compile(r"\b(anything else|something else)\b", re.IGNORECASE)
_CHOICE = re.compile(r"\b(which|or)\b", re.IGNORECASE)
_CONFIRM = re.compile(
    r"\b(shall i|should i|do you want me to|would you like me to|confirm|go ahead|proceed)\b",
    re.IGNORECASE,
)


def fact_line(name: str, words: tuple[str, ...], value: object) -> str:
    """One known fact in a requester's system message."""
    return f"- {name} (asked as: {', '.join(words)}): {value}"


def is_requester(system: str) -> bool:
    """True when a request's system message asks the model to play a requester."""
    return system.startswith(REQUESTER_MARKER)


def requester_reply(system: str, agent_said: str) -> Reply:
    """What the person described in ``system`` says to the agent's turn ``agent_said``."""
    if "?" not in agent_said or _ANYTHING_ELSE.search(agent_said):
        return Reply(content=DONE)
    facts = [m for line in system.splitlines() if (m := _FACT.match(line.strip()))]
    choice = _CHOICE.search(agent_said) is not None
    unsaid = [m for m in facts if choice or not _says(agent_said, m["value"].strip())]
    asked = [
        m
        for m in unsaid
        if any(_says(agent_said, word) for word in m["words"].split(",") if word.strip())
    ]
    if asked:
        return Reply(
            content=" ".join(
                f"The {m['name'].replace('_', ' ')} is {m['value'].strip()}." for m in asked
            )
        )
    if _CONFIRM.search(agent_said) or len(unsaid) < len(facts):
        return Reply(content="Yes, please go ahead.")
    lines = system.splitlines()
    wants = next((ln.removeprefix(WANTS_PREFIX) for ln in lines if ln.startswith(WANTS_PREFIX)), "")
    return Reply(content=wants.strip() or "I don't know, sorry.")


def _says(text: str, words: str) -> bool:
    """True when ``text`` holds ``words`` as a whole token, in any case (a plural too)."""
    token = rf"(?<![\w-]){re.escape(words.strip())}s?(?![\w-])"
    return re.search(token, text, re.IGNORECASE) is not None
