from __future__ import annotations

from pathlib import Path

from agentlab.core.errors import AgentlabError

REPO = Path(__file__).parents[3]


def _all_error_classes() -> list[type[AgentlabError]]:
    found, todo = [], [AgentlabError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_code_has_a_page_that_names_its_class() -> None:
    missing = []
    for cls in _all_error_classes():
        page = REPO / cls.docs_page()
        if not page.is_file() or cls.__name__ not in page.read_text(encoding="utf-8"):
            missing.append(f"{cls.__name__} -> {cls.docs_page()}")
    assert missing == []
