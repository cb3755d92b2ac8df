"""Figures exported as PNG by kaleido driving the system's Chromium, with no network."""

from __future__ import annotations

import struct
from pathlib import Path

import plotly.graph_objects as go
import pytest

from agentlab.core.errors import MissingDependency
from agentlab.report import export, export_png, kpi_figure
from tests.unit.report._runs import nightly_inputs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_kpi_figure_is_written_as_a_png_of_the_size_asked_for(tmp_path: Path) -> None:
    figure = kpi_figure(nightly_inputs()["kpis"])

    path = export_png(figure, tmp_path / "figures" / "kpis.png", width=800, height=400, scale=2)

    assert path == tmp_path / "figures" / "kpis.png"
    data = path.read_bytes()
    assert png_size(data) == (1600, 800)
    assert len(data) > 10_000  # bars, axes and titles, not an empty canvas


def test_the_figures_own_size_is_used_when_none_is_given(tmp_path: Path) -> None:
    figure = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout={"width": 500, "height": 300})
    path = export_png(figure, tmp_path / "bars.png")
    assert png_size(path.read_bytes()) == (500, 300)


def test_without_a_browser_the_error_says_to_install_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on PATH
    monkeypatch.setattr(export, "SYSTEM_CHROMIUM", tmp_path / "no-chromium")
    figure = go.Figure(go.Bar(x=["a"], y=[1]))

    with pytest.raises(MissingDependency, match="Chrome or Chromium") as caught:
        export_png(figure, tmp_path / "never.png")
    assert "apt-get install chromium" in str(caught.value)
    assert not (tmp_path / "never.png").exists()


def test_a_browser_path_that_is_not_a_browser_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "missing-chrome"))
    with pytest.raises(MissingDependency, match="missing-chrome") as caught:
        export_png(go.Figure(), tmp_path / "never.png")
    assert "chromium" in str(caught.value)
