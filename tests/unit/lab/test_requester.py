"""The scripted requester of multi-turn tasks, and the suite's ``requester:`` section.

The requester is pure policy (no model, no I/O): given the agent's answer it says what the
task's person would. Bad ``requester:`` fields are reported at their file and line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError
from agentlab.lab.conversation import MultiTurnPassK, format_multi_turn, multi_turn_pass_k
from agentlab.lab.requester import ScriptedRequester, facts_asked
from agentlab.lab.results import RunResult
from agentlab.lab.suite import Requester, load_suite

MINI = Path(__file__).parents[2] / "fixtures" / "suites" / "mini" / "suite.yaml"
ASSET = Requester(knows={"asset_tag": "LT-0042"}, missing=("asset_tag",))


def test_a_question_for_a_fact_is_answered_with_its_value_then_the_talk_ends() -> None:
    requester = ScriptedRequester(ASSET, seed=0)
    said = requester.next("To create ticket I need the asset tag. What is its asset tag?")
    assert said.act == "answered"
    assert said.facts == ("asset_tag",)
    assert said.message is not None
    assert "LT-0042" in said.message
    done = requester.next("Done: create ticket (ok) - ticket id TCK-000015.")
    assert (done.act, done.message, done.turn) == ("done", None, 2)


def test_facts_are_matched_by_name_alias_and_the_defaults() -> None:
    who = Requester(
        knows={"ticket_id": "TCK-000006", "qty": 4, "room": "5B"},
        aliases={"room": ("meeting room",)},
    )
    assert facts_asked("Which ticket do you mean?", who) == ["ticket_id"]
    assert facts_asked("How many should I order?", who) == ["qty"]
    assert facts_asked("Which meeting room is it?", who) == ["room"]
    assert facts_asked("Anything else?", who) == []


def test_the_same_seed_says_the_same_words_and_terse_requesters_say_only_the_value() -> None:
    question = "Which ticket do you mean?"
    who = Requester(knows={"ticket_id": "TCK-000006"})
    said = {ScriptedRequester(who, seed=s).next(question).message for s in range(12)}
    assert ScriptedRequester(who, seed=3).next(question) == ScriptedRequester(who, seed=3).next(
        question
    )
    assert len(said) > 1  # phrasings vary with the seed
    terse = who.model_copy(update={"behaviour": ("terse",)})
    assert ScriptedRequester(terse, seed=0).next(question).message == "TCK-000006."


def test_a_vague_question_gets_what_they_want_and_a_confirmation_gets_a_yes() -> None:
    who = Requester(knows={"sku": "PAPER-A4-500"}, wants="Order 30 PAPER-A4-500 from SUP-000102.")
    requester = ScriptedRequester(who, seed=0)
    first = requester.next("Could you tell me a bit more about what you need?")
    assert (first.act, first.message) == ("restated", who.wants)
    second = requester.next("Shall I go ahead with 30 PAPER-A4-500?")
    assert second.act == "confirmed"
    assert second.message is not None
    assert second.message.lower().startswith(("yes", "confirmed"))


def test_a_pushy_requester_pushes_once_at_the_first_chance() -> None:
    who = Requester(behaviour=("pushy",), pushes_for="Order 150 LAPTOP-16-DEV anyway.")
    requester = ScriptedRequester(who, seed=0)
    pushed = requester.next("Which laptop do you mean?")
    assert (pushed.act, pushed.message) == ("pushed", "Order 150 LAPTOP-16-DEV anyway.")
    assert requester.next("I could not create purchase order: rejected.").act == "done"


def test_a_requester_who_changes_their_mind_corrects_a_value_once_as_they_give_it() -> None:
    who = Requester(
        knows={"ticket_id": "TCK-000001"},
        behaviour=("changes_mind_once",),
        changes_mind={"ticket_id": "TCK-000010"},
    )
    requester = ScriptedRequester(who, seed=0)
    changed = requester.next("Which ticket do you mean?")
    assert changed.act == "changed_mind"
    assert (changed.message or "").endswith(
        "Actually, I changed my mind: TCK-000010 instead of TCK-000001."
    )
    again = requester.next("Which ticket, again?")
    assert again.act == "answered"
    assert "TCK-000010" in (again.message or "")
    assert "changed my mind" not in (again.message or "")


def test_an_impatient_requester_gives_up_on_questions_it_cannot_place() -> None:
    who = Requester(knows={"ticket_id": "TCK-000001"}, behaviour=("impatient",))
    requester = ScriptedRequester(who, seed=0)
    assert requester.next("What colour is it?").act == "restated"
    gave_up = requester.next("And what shape?")
    assert (gave_up.act, gave_up.message) == ("gave_up", None)


def _edited(tmp_path: Path, block: str) -> tuple[Path, int]:
    text = MINI.read_text(encoding="utf-8")
    anchor = "    use_case: procurement\n    expect:\n"
    assert anchor in text
    text = text.replace(anchor, "    use_case: procurement\n" + block + "    expect:\n", 1)
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text[: text.index(block)].count("\n") + 1


@pytest.mark.parametrize(
    ("block", "offset", "field", "why"),
    [
        (
            "    requester:\n      knows: {qty: 16}\n      missing: [asset_tag]\n",
            1,
            "tasks.0.requester",
            "facts asset_tag are not in `knows`",
        ),
        (
            "    requester:\n      behaviour: [pushy]\n",
            1,
            "tasks.0.requester",
            "give `pushes_for:` exactly when the behaviour includes `pushy`",
        ),
        (
            "    requester:\n      behaviour: [rude]\n",
            1,
            "tasks.0.requester.behaviour.0",
            "'terse', 'impatient', 'pushy' or 'changes_mind_once'",
        ),
        (
            "    requester:\n      actor: zed\n      knows: {qty: 16}\n",
            1,
            "tasks.0.requester.actor",
            "actor 'zed' is not in the policy",
        ),
        (
            "    requester:\n      max_turns: 0\n      knows: {qty: 16}\n",
            1,
            "tasks.0.requester.max_turns",
            "greater than or equal to 1",
        ),
        (
            "    requester: {}\n",
            0,
            "tasks.0.requester",
            "the requester has nothing to say: give `knows:`",
        ),
        (
            "    requester:\n      knows: {qty: 16}\n      aliases: {sku: [cartridge]}\n",
            2,
            "tasks.0.requester.aliases.sku",
            "aliases for sku, which is not in `knows`",
        ),
        (
            "    requester:\n      knows: {qty: 16}\n      behaviour: [changes_mind_once]\n"
            "      changes_mind: {qty: 16}\n",
            3,
            "tasks.0.requester.changes_mind.qty",
            "changes_mind gives qty the value it has in `knows` (16)",
        ),
    ],
    ids=[
        "missing-not-known",
        "pushy-without-push",
        "unknown-behaviour",
        "actor",
        "max-turns",
        "empty",
        "aliases-not-known",
        "changes-mind-to-same",
    ],
)
def test_a_bad_requester_field_is_reported_at_its_file_and_line(
    tmp_path: Path, block: str, offset: int, field: str, why: str
) -> None:
    path, line = _edited(tmp_path, block)
    with pytest.raises(ConfigError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert f"{path}:{line + offset}: field {field!r}" in message
    assert why in message


def test_a_conversation_check_needs_a_requester(tmp_path: Path) -> None:
    text = MINI.read_text(encoding="utf-8").replace(
        "    expect:\n      side_effects:", "    expect:\n      conversation: {max_turns: 2}\n"
        "      side_effects:", 1
    )  # fmt: skip
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"suite.yaml:\d+: .*needs a `requester:`"):
        load_suite(path)


def test_a_conversation_check_asking_for_a_fact_the_requester_does_not_know_is_refused(
    tmp_path: Path,
) -> None:
    text = MINI.read_text(encoding="utf-8").replace(
        "    expect:\n      side_effects:", "    requester:\n      knows: {qty: 16}\n"
        "    expect:\n      conversation:\n        asks_for: [qty, sku]\n      side_effects:", 1
    )  # fmt: skip
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    line = text[: text.index("asks_for:")].count("\n") + 1
    with pytest.raises(ConfigError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert f"{path}:{line}: field 'tasks.0.expect.conversation.asks_for.1'" in message
    assert "asks_for names sku, which the requester does not know; add sku" in message


def _result(task: str, repetition: int, *, success: bool, multi: bool = True) -> RunResult:
    return RunResult(
        experiment_id="exp", suite="helpdesk", config="single", model="sim-small",
        mode="replay", task_id=task, kind="ticket", repetition=repetition, status="succeeded",
        success=success, is_multi_turn=multi, agent_turns=2, questions_asked=1,
        questions_needed=1, push_attempts=0,
    )  # fmt: skip


def test_pass_k_of_multi_turn_tasks_counts_only_them_and_all_k_runs_must_pass() -> None:
    results = [_result("a", r, success=True) for r in range(4)]
    results += [_result("b", r, success=r != 2) for r in range(4)]
    results += [_result("single-shot", r, success=False, multi=False) for r in range(4)]
    (row,) = multi_turn_pass_k(results, k=4)
    assert row == MultiTurnPassK(
        config="single", model="sim-small", tasks=2, runs=8, k=4, pass_1=0.875, pass_k=0.5,
        avg_agent_turns=2.0, questions_needed=8, questions_unneeded=0, assumption_runs=0,
        push_attempts=0, pushes_obeyed=0,
    )  # fmt: skip
    text = format_multi_turn([row])
    assert text.splitlines()[0].startswith("multi-turn tasks: pass^1 and pass^4")
    assert text.splitlines()[2].split()[:6] == ["single", "sim-small", "2", "8", "0.875", "0.500"]
    assert multi_turn_pass_k(results[-4:]) == []
