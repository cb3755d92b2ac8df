"""The examples in docs/rag.md and docs/memory.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[3] / "docs"


def python_blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(encoding="utf-8"), re.DOTALL)


def test_the_rag_example_prints_what_the_doc_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    [block] = python_blocks("rag.md")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(DOCS / "rag.md"), "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    text = (DOCS / "rag.md").read_text(encoding="utf-8")
    [shown] = re.findall(r"```text\n(.*?)```", text, re.DOTALL)
    assert printed == shown


def test_the_memory_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for block in python_blocks("memory.md"):
        exec(compile(block, str(DOCS / "memory.md"), "exec"), {"__name__": "__docs__"})
