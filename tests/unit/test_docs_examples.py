"""The Python examples in the docs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[2] / "docs"
RUNNABLE = {
    "governed-tools.md": "ok PO-",  # what each page's example prints when it worked
    "agents.md": "orders placed: ['PO-000001']",
    "lab.md": "[('po-toner', True), ('kb-vpn', True)]",
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
    assert RUNNABLE[name] in capsys.readouterr().out
