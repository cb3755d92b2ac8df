"""docs/operations.md's Python examples run as written and print what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).parents[3] / "docs" / "operations.md"


def test_the_operations_page_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "invoke_agent single" in out
    assert "      execute_tool create_purchase_order" in out  # depth 2: under node act
    quoted = re.search(r"`(SLO success: .*?)`", text.replace("\n", " "))
    assert quoted is not None
    assert " ".join(quoted[1].split()) in " ".join(out.split())
