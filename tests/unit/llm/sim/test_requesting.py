"""The simulator playing a model-driven requester from the persona the lab sends."""

from __future__ import annotations

from agentlab.lab.requester import persona
from agentlab.lab.suite import Requester
from agentlab.llm.sim.requesting import DONE, is_requester, requester_reply

WHO = Requester(
    knows={"asset_tag": "DK-0311", "to": "mika@example.co.jp"},
    missing=("asset_tag",),
    wants="A ticket for my broken dock.",
)
SYSTEM = persona(WHO)


def reply(agent_said: str) -> str | None:
    return requester_reply(SYSTEM, agent_said).content


def test_the_persona_is_recognised_and_lists_each_fact() -> None:
    assert is_requester(SYSTEM)
    assert "- asset_tag (asked as: asset tag, asset, tag, serial): DK-0311" in SYSTEM
    assert not is_requester("You are a help desk agent.")


def test_a_fact_is_given_only_when_the_agent_asks_for_it() -> None:
    assert reply("What is the asset tag of the dock?") == "The asset tag is DK-0311."
    assert reply("I opened the ticket under asset tag DK-0311.") == DONE  # no question
    assert reply("Done. Is there anything else?") == DONE


def test_a_question_that_says_the_value_is_confirmed() -> None:
    assert reply("Shall I file it under DK-0311?") == "Yes, please go ahead."


def test_a_question_it_cannot_place_gets_what_they_want() -> None:
    assert reply("What seems to be the problem?") == "A ticket for my broken dock."
