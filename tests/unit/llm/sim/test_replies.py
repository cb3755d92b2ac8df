"""The simulator reads a conversation: the requester's replies count, corrections replace."""

from __future__ import annotations

from agentlab.llm.sim.reading import read_conversation, unstated_facts


def _request(*messages: dict[str, object]) -> dict[str, object]:
    return {"messages": [{"role": "system", "content": "You are a help-desk agent."}, *messages]}


def test_a_reply_to_a_question_is_part_of_the_task_and_a_correction_replaces_a_value() -> None:
    conversation = read_conversation(
        _request(
            {"role": "user", "content": "Order toner."},
            {"role": "assistant", "content": "How many should I order?"},
            {"role": "user", "content": "16 of TONER-BK-05."},
            {"role": "assistant", "content": "From which supplier?"},
            {
                "role": "user",
                "content": "Actually, I changed my mind: 20 instead of 16. SUP-000103.",
            },
        )
    )
    assert conversation.first == "Order toner."
    assert conversation.replies == (
        "20 of TONER-BK-05.",
        "Actually, I changed my mind: 20 instead of 16. SUP-000103.",
    )
    assert "20 of TONER-BK-05." in conversation.task
    assert "16 of" not in conversation.task


def test_a_correction_in_the_same_reply_replaces_what_it_said_before() -> None:
    conversation = read_conversation(
        _request(
            {"role": "user", "content": "Add a comment to the ticket."},
            {"role": "assistant", "content": "Which ticket do you mean?"},
            {
                "role": "user",
                "content": "It's TCK-000001. Actually: TCK-000010 instead of TCK-000001.",
            },
        )
    )
    assert conversation.replies[0].startswith("It's TCK-000010.")


def test_findings_and_revised_plans_are_not_replies() -> None:
    conversation = read_conversation(
        _request(
            {"role": "user", "content": "Order 16 TONER-BK-05 from SUP-000103."},
            {"role": "assistant", "content": "Done: PO-000001."},
            {"role": "user", "content": "Verification failed:\n- no tool result shows it"},
        )
    )
    assert conversation.replies == ()
    assert conversation.task == "Order 16 TONER-BK-05 from SUP-000103."


def test_a_named_asset_tag_without_a_value_is_an_unstated_fact() -> None:
    assert unstated_facts("Open a ticket for my laptop under its asset tag.") == ["asset tag"]
    assert unstated_facts("Open a ticket for my laptop under its asset tag.\nLT-0042.") == []
    assert unstated_facts("Open a ticket: the projector has no signal.") == []
