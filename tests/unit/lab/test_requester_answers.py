"""What the scripted requester says to questions people's agents actually ask.

Confirmations that name a value, closing "anything else?" questions, choices between
options, a fact named like a common word, and a `wants` that would give away a fact the
agent has yet to ask for.
"""

from __future__ import annotations

from agentlab.lab.requester import ScriptedRequester, facts_asked
from agentlab.lab.suite import Requester

TICKET = Requester(knows={"ticket_id": "TCK-000006"}, missing=("ticket_id",))
MAIL = Requester(
    knows={"to": "mika@example.co.jp"},
    missing=("to",),
    wants="Tell him the new laptops arrive Monday.",
)


def test_a_question_that_names_the_value_is_a_confirmation_and_gets_a_yes() -> None:
    said = ScriptedRequester(TICKET, seed=0).next("Shall I resolve ticket TCK-000006 now?")
    assert said.act == "confirmed"
    assert said.facts == ()


def test_a_choice_between_options_is_answered_with_the_fact() -> None:
    who = Requester(knows={"supplier_id": "SUP-000103"}, missing=("supplier_id",))
    question = "Several suppliers fit: SUP-000103 or SUP-000104. Which supplier should I use?"
    said = ScriptedRequester(who, seed=0).next(question)
    assert (said.act, said.facts) == ("answered", ("supplier_id",))


def test_anything_else_after_the_work_ends_the_conversation() -> None:
    requester = ScriptedRequester(TICKET, seed=0)
    said = requester.next("Done: ticket TCK-000006 is resolved. Is there anything else?")
    assert (said.act, said.message) == ("done", None)


def test_a_fact_named_like_a_common_word_is_not_asked_for_by_that_word() -> None:
    assert facts_asked("Would you like me to order it?", MAIL) == []
    assert facts_asked("Who should I send it to?", MAIL) == ["to"]
    said = ScriptedRequester(MAIL, seed=1).next("Which recipient address should I use?")
    assert said.message is not None
    assert "recipient" in said.message or "mika@example.co.jp" in said.message
    assert "The to is" not in said.message


def test_a_question_it_cannot_place_never_gives_a_missing_fact() -> None:
    requester = ScriptedRequester(TICKET, seed=0)
    said = requester.next("Could you say more about what you need?")
    assert "TCK-000006" not in (said.message or "")
    assert said.facts == ()


def test_wants_that_name_a_missing_fact_are_said_only_once_it_was_asked_for() -> None:
    who = Requester(
        knows={"ticket_id": "TCK-000009"},
        missing=("ticket_id",),
        wants="Resolve ticket TCK-000009: the standing desk was delivered.",
    )
    vague = ScriptedRequester(who, seed=0).next("What would you like me to do?")
    assert "TCK-000009" not in (vague.message or "")
    asked = ScriptedRequester(who, seed=0).next("Which ticket do you mean?")
    assert asked.message == "Resolve ticket TCK-000009: the standing desk was delivered."
    assert asked.facts == ("ticket_id",)
