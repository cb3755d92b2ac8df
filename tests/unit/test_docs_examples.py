"""The Python examples in the docs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentlab.lab import load_suite

DOCS = Path(__file__).parents[2] / "docs"
RUNNABLE: dict[str, str | tuple[str, ...]] = {
    "governed-tools.md": "ok PO-",  # what each page's example prints when it worked
    "agents.md": "orders placed: ['PO-000001']",
    "lab.md": (
        "[('po-toner', True), ('kb-vpn', True)]",
        "[(0, True, 1), (1, True, 1), (2, True, 1), (3, True, 1)]",  # the multi-turn example
    ),
}


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_the_docs_python_examples_run(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DOCS / name
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, f"{name} has no python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(path), "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    expected = RUNNABLE[name]
    for line in (expected,) if isinstance(expected, str) else expected:
        assert line in printed


def test_the_multi_turn_yaml_example_in_lab_md_is_a_valid_suite(tmp_path: Path) -> None:
    text = (DOCS / "lab.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "requester:" in b]
    path = tmp_path / "suite.yaml"
    path.write_text("name: docs\n" + block, encoding="utf-8")
    suite = load_suite(path)
    assert [t.id for t in suite.tasks] == ["mt-asset-tag-laptop", "mt-push-laptops"]
    first = suite.tasks[0]
    assert first.requester is not None
    assert first.requester.missing == ("asset_tag",)
