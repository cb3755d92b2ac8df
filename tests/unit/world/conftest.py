"""World tests never read the shipped knowledge-base corpus: each brings its own articles."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.world import fixture


@pytest.fixture(autouse=True)
def no_shipped_kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixture, "DEFAULT_KB", tmp_path / "no-shipped-kb")
