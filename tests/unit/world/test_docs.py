"""The world's documentation: its Python example runs and prints what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentlab.world import fixture

DOC = Path(__file__).parents[3] / "docs" / "world.md"


def test_the_python_example_runs_and_prints_what_the_doc_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = DOC.read_text(encoding="utf-8")
    [block] = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    exec(compile(block, str(DOC), "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out.splitlines() == [
        "would cost 250.0 - changed so far: {}",
        "ok PO-000001 changed: ['erp.purchase_orders']",
    ]


def test_the_yaml_example_is_a_valid_fixture(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    [block] = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    path = tmp_path / "world.yaml"
    path.write_text(block, encoding="utf-8")
    loaded = fixture.load_world_fixture(path)
    assert fixture.kb_folder_of(loaded, path) == tmp_path / "kb"
    assert loaded.latency_ms.erp == 20
