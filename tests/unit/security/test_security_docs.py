"""docs/security.md's example runs as written and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[3] / "docs" / "security.md"


def test_the_example_runs_and_prints_what_the_page_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "attack success: all on 0%, all off 100%" in out
    assert "Card [masked:card_number], key [masked:api_key]" in out
    assert "ShortLivedToken('erp_api', scopes=['erp:read']" in out


def test_the_page_names_every_defence_layer() -> None:
    from agentlab.policy import DEFENCE_LAYERS

    text = DOC.read_text(encoding="utf-8")
    assert all(f"`{layer}`" in text for layer in DEFENCE_LAYERS)
