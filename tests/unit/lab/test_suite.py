"""Golden-run suites: the shipped one loads, and bad input is reported at its file and line.

Each bad suite is the small fixture suite with one edit; the line an error must name is found
in the edited text, so the tests do not depend on the fixture's layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agentlab.core.errors import ConfigError
from agentlab.lab.suite import GOLDEN_RUNS, Suite, load_suite, suite_path
from agentlab.tools import builtin_tools
from agentlab.world.fixture import default_world_fixture

MINI = Path(__file__).parents[2] / "fixtures" / "suites" / "mini" / "suite.yaml"


def edited(tmp_path: Path, old: str, new: str, *, occurrence: int = 1) -> tuple[Path, int]:
    """The mini suite with ``old`` replaced by ``new``; its path and the line ``new`` starts on.

    ``occurrence`` picks which appearance of ``new`` in the edited text to report the line of.
    """
    text = MINI.read_text(encoding="utf-8")
    assert old in text, f"the fixture no longer holds {old!r}"
    text = text.replace(old, new, 1)
    folder = tmp_path / "mini"
    folder.mkdir(exist_ok=True)
    path = folder / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    at = -1
    for _ in range(occurrence):
        at = text.index(new, at + 1)
    return path, text[:at].count("\n") + 1


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_suite(path)
    return str(caught.value)


def test_the_shipped_helpdesk_suite_loads() -> None:
    suite = load_suite("helpdesk")
    assert suite.name == "helpdesk"
    assert suite.folder == GOLDEN_RUNS / "helpdesk"
    assert set(suite.configs) == {"chat_rag", "single", "multi"}
    assert len(suite.tasks) >= 10
    assert len({t.id for t in suite.tasks}) == len(suite.tasks)
    tools = {spec.name for spec in builtin_tools()}
    for task in suite.tasks:
        assert task.actor in suite.loaded_policy.actors
        assert task.use_case in suite.loaded_policy.use_cases
        assert {e.tool for e in task.expect.side_effects or ()} <= tools
    assert suite.world_fixture.model_dump()  # the fixture it names loads too


def test_a_suite_is_found_by_name_folder_or_file() -> None:
    by_name = suite_path("helpdesk")
    assert suite_path(by_name.parent) == by_name
    assert suite_path(by_name) == by_name
    assert load_suite(MINI.parent).name == "mini"


def test_an_unknown_suite_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="no suite 'nowhere'") as caught:
        suite_path("nowhere")
    assert "helpdesk" in (caught.value.hint or "")


def test_the_fixture_suite_loads_with_its_defaults() -> None:
    suite = load_suite(MINI)
    assert isinstance(suite, Suite)
    assert [t.id for t in suite.tasks] == [
        "po-toner",
        "stock-staples",
        "mail-buyer",
        "close-monitor",
        "phase2-po-preview",
    ]
    assert suite.task("phase2-po-preview").phase == 2
    assert suite.task("po-toner").expect.side_effects[0].match == "subset"  # type: ignore[index]
    assert suite.task("close-monitor").expect.side_effects is None  # unset: not checked
    assert suite.reviewer.rules[0].decision == "reject"


def test_asking_for_an_unknown_task_names_some_that_exist() -> None:
    with pytest.raises(ConfigError, match=r"no task 'nope'.*po-toner"):
        load_suite(MINI).task("nope")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            "- tool: create_purchase_order",
            "- tool: launch_rocket",
            "tasks.0.expect.side_effects.0.tool",
        ),
        (
            "  rules:\n    - tool: send_email",
            "  rules:\n    - tool: send_fax",
            "reviewer.rules.0.tool",
        ),
        (
            "      side_effects: []\n      world: {}\n      answer",
            "      side_effects: []\n      world: {}\n      forbidden:\n"
            "        effects: [{tool: launch_rocket}]\n      answer",
            "tasks.1.expect.forbidden.effects.0.tool",
        ),
    ],
    ids=["side-effect", "reviewer-rule", "forbidden-effect"],
)
def test_an_unknown_tool_is_reported_at_its_line(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    name = "launch_rocket" if "rocket" in new else "send_fax"
    path, line = edited(tmp_path, old, new)
    line += new[: new.index(name)].count("\n")
    message = load_error(path)
    assert f"{path}:{line}: field {field!r}" in message
    assert f"unknown tool {name!r}" in message
    assert "create_purchase_order" in message  # the known tools are listed


def test_an_unknown_actor_is_reported_at_its_line(tmp_path: Path) -> None:
    path, line = edited(tmp_path, "actor: bob", "actor: zed")
    message = load_error(path)
    assert f"{path}:{line}: field 'tasks.3.actor': actor 'zed' is not in the policy" in message
    assert "alice, bob" in message


def test_an_unknown_use_case_is_reported_at_its_line(tmp_path: Path) -> None:
    path, line = edited(tmp_path, "use_case: helpdesk", "use_case: gardening")
    message = load_error(path)
    assert f"{path}:{line}: field 'tasks.3.use_case': use case 'gardening'" in message
    assert "procurement" in message


def test_a_duplicate_task_id_is_reported_at_the_second(tmp_path: Path) -> None:
    path, line = edited(tmp_path, "id: stock-staples", "id: po-toner", occurrence=2)
    message = load_error(path)
    assert f"{path}:{line}: field 'tasks.1.id': task id po-toner appears twice" in message


def test_a_regex_that_does_not_compile_is_reported_at_its_pattern(tmp_path: Path) -> None:
    new = 'args: {to: [{$regex: "(unclosed"}]}'
    path, line = edited(tmp_path, "args: {to: [buyer@example.co.jp]}", new)
    message = load_error(path)
    assert f"{path}:{line}: field 'tasks.2.expect.side_effects.0.args'" in message
    assert "$regex '(unclosed' does not compile" in message


def test_an_unknown_operator_is_reported_at_its_pattern(tmp_path: Path) -> None:
    old = "      added: [{to: [buyer@example.co.jp]}]"
    path, line = edited(tmp_path, old, "      added: [{to: {$has: buyer}}]")
    message = load_error(path)
    assert f"{path}:{line}: field 'tasks.2.expect.world.mail.outbox.added.0'" in message
    assert "$has is not an operator" in message


def test_a_reviewer_rule_pattern_is_checked_too(tmp_path: Path) -> None:
    old = 'args: {to: [{$not: {$regex: "@example\\\\.co\\\\.jp$"}}]}'
    path, line = edited(tmp_path, old, "args: {to: {$in: buyer}}")
    message = load_error(path)
    assert f"{path}:{line}: field 'reviewer.rules.0.args'" in message
    assert "$in needs a list" in message


def test_an_edit_decision_without_edits_is_refused_at_its_rule(tmp_path: Path) -> None:
    path, _ = edited(tmp_path, "      decision: reject", "      decision: edit")
    text = path.read_text(encoding="utf-8")
    line = text[: text.index("    - tool: send_email")].count("\n") + 1
    message = load_error(path)
    assert f"{path}:{line}: field 'reviewer.rules.0'" in message
    assert "give `edit:` values exactly when the decision is `edit`" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = MINI.read_text(encoding="utf-8").replace("actor: bob", "actor: zed")
    text = text.replace("- tool: create_purchase_order", "- tool: launch_rocket")
    (tmp_path / "suite.yaml").write_text(text, encoding="utf-8")
    message = load_error(tmp_path / "suite.yaml")
    assert "2 problems in" in message
    assert "tasks.3.actor" in message
    assert "tasks.0.expect.side_effects.0.tool" in message


def test_a_field_the_suite_does_not_know_is_reported_at_its_line(tmp_path: Path) -> None:
    path, line = edited(tmp_path, "    kind: read\n", "    kind: read\n    owner: me\n")
    message = load_error(path)
    assert f"{path}:{line + 1}: field 'tasks.1.owner'" in message


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path, line = edited(tmp_path, "    kind: read\n", "     kind: read\n")
    message = load_error(path)
    assert f"{path}:{line}: not valid YAML" in message


def test_a_missing_world_fixture_is_reported_at_the_world_line(tmp_path: Path) -> None:
    path, line = edited(tmp_path, "world: default", "world: nowhere.yaml")
    message = load_error(path)
    assert "nowhere.yaml" in message
    assert f"{path}:{line}" in message, "the error should name the line of `world:`"
    assert "world" in message


def test_a_world_fixture_next_to_the_suite_is_used(tmp_path: Path) -> None:
    path, _ = edited(tmp_path, "world: default", "world: fixture.yaml")
    fixture = default_world_fixture()
    (path.parent / "fixture.yaml").write_text(
        yaml.safe_dump(fixture.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    suite = load_suite(path)
    assert suite.world_fixture_path == path.parent / "fixture.yaml"
    assert suite.world_fixture == fixture
