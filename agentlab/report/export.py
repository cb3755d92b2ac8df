"""Plotly figures as PNG files, rendered by kaleido in the system's Chromium.

Kaleido 1.x no longer bundles a browser: it drives a Chrome or Chromium it finds (the
``BROWSER_PATH`` variable, then ``PATH``). agentlab never lets it download one; where none
is found it points kaleido at Debian's ``/usr/bin/chromium``, and where that is missing too
the error says to install it. MathJax is switched off so that nothing is fetched from a CDN:
an export works offline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import plotly.graph_objects as go

from agentlab.core.errors import MissingDependency

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
"""Debian's ``chromium`` package, which ``./dev test`` installs where it is missing."""
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_INSTALL_HINT = (
    "install Debian's chromium (sudo apt-get install chromium; ./dev test does it), "
    "or set BROWSER_PATH to a Chrome or Chromium executable"
)


def find_browser() -> Path:
    """The Chrome or Chromium kaleido will drive: ``BROWSER_PATH``, ``PATH``, then Debian's.

    Raises:
        MissingDependency: none is installed; the hint says how to install one.
    """
    override = os.environ.get("BROWSER_PATH")
    if override:
        if not _is_executable(Path(override)):
            raise MissingDependency(
                f"BROWSER_PATH={override!r} is not an executable file", hint=_INSTALL_HINT
            )
        return Path(override)
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found and _is_executable(Path(found)):
            return Path(found)
    if _is_executable(SYSTEM_CHROMIUM):
        return SYSTEM_CHROMIUM
    raise MissingDependency(
        "exporting a figure as PNG needs Chrome or Chromium, and none was found "
        f"(BROWSER_PATH unset; {', '.join(_BROWSER_NAMES)} not on PATH; no {SYSTEM_CHROMIUM})",
        hint=_INSTALL_HINT,
    )


def figure_png(
    figure: go.Figure,
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 1,
    browser: Path | None = None,
) -> bytes:
    """The figure rendered as PNG bytes.

    Args:
        figure: The plotly figure.
        width: Pixels before ``scale``; the figure's layout width, else 700.
        height: Pixels before ``scale``; the figure's layout height, else 500.
        scale: Multiplies width and height (2 for a sharper image of the same layout).
        browser: The Chrome or Chromium to drive (:func:`find_browser` if None).

    Raises:
        MissingDependency: kaleido is not installed, or no browser was found.
    """
    try:
        import kaleido  # noqa: PLC0415 -- optional: the notebooks extra
    except ImportError as exc:
        raise MissingDependency(
            "exporting a figure as PNG needs kaleido", hint="pip install 'agentlab[notebooks]'"
        ) from exc
    path = browser or find_browser()
    size = {
        "width": width or figure.layout.width or 700,
        "height": height or figure.layout.height or 500,
    }
    return kaleido.calc_fig_sync(
        figure,
        opts={"format": "png", "scale": scale, **size},
        kopts={"path": str(path), "mathjax": False},
    )


def export_png(
    figure: go.Figure,
    path: str | Path,
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 1,
) -> Path:
    """Write the figure to ``path`` as a PNG (its folder is created) and return the path.

    The image is ``width * scale`` by ``height * scale`` pixels; see :func:`figure_png`.

    Raises:
        MissingDependency: kaleido is not installed, or no Chrome or Chromium was found.
    """
    target = Path(path)
    png = figure_png(figure, width=width, height=height, scale=scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)
    return target


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
