from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.core.errors import AgentlabError, ToolRejected


def all_error_classes() -> list[type[AgentlabError]]:
    found, todo = [], [AgentlabError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_has_its_own_code() -> None:
    classes = all_error_classes()
    assert len(classes) > 5  # the walk found the hierarchy
    codes = [cls.code for cls in classes]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda cls: cls.__name__)
def test_the_message_starts_with_the_code_and_ends_with_the_hint(
    cls: type[AgentlabError],
) -> None:
    error = cls("run_1 seq 4 is taken", hint="re-read the run")
    first, *rest = str(error).splitlines()
    assert first == f"[{cls.code}] run_1 seq 4 is taken"
    assert [line.strip() for line in rest] == ["hint: re-read the run"]
    assert (error.message, error.hint) == ("run_1 seq 4 is taken", "re-read the run")


def test_without_a_hint_there_is_no_hint_line() -> None:
    assert "hint" not in str(AgentlabError("something broke"))


def test_a_tool_rejection_is_not_an_agentlab_error() -> None:
    assert issubclass(ToolRejected, Exception)
    assert not issubclass(ToolRejected, AgentlabError)


def test_every_error_code_has_a_page_that_names_its_class() -> None:
    repo = Path(__file__).parents[3]
    missing = [
        f"{cls.__name__} -> {cls.docs_page()}"
        for cls in all_error_classes()
        if not (repo / cls.docs_page()).is_file()
        or cls.__name__ not in (repo / cls.docs_page()).read_text(encoding="utf-8")
    ]
    assert missing == []


def test_an_error_reads_the_same_after_crossing_a_process() -> None:
    import pickle

    from agentlab.core.errors import ConfigError

    error = ConfigError("suite 'x' has no task 'y'", hint="list them with agentlab experiments")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ConfigError
    assert (again.message, again.hint, str(again)) == (error.message, error.hint, str(error))
