"""Strip notebooks for committing: no outputs, no execution counts, no timing metadata.

Committed notebooks carry none of these, so their diffs show only what a person changed
(``test_notebooks.py`` checks it). Cell tags stay: the tests find their key cells by tag.

    .venv/bin/python -m tests.notebooks.strip notebooks/*.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

KEPT_CELL_METADATA = frozenset({"tags"})


def strip(nb: NotebookNode) -> NotebookNode:
    """Remove outputs, execution counts and every cell metadata key but ``tags``, in place."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
    return nb


def leftovers(nb: NotebookNode) -> list[str]:
    """What :func:`strip` would remove, cell by cell (empty when the notebook is clean)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.outputs:
            found.append(f"cell {i}: outputs")
        if cell.cell_type == "code" and cell.execution_count is not None:
            found.append(f"cell {i}: execution_count")
        extra = sorted(set(cell.metadata) - KEPT_CELL_METADATA)
        if extra:
            found.append(f"cell {i}: metadata {', '.join(extra)}")
    return found


def main(paths: list[str]) -> int:
    """Strip each notebook in place; print the ones that changed."""
    for name in paths:
        path = Path(name)
        nb = nbformat.read(path, as_version=4)
        if leftovers(nb):
            nbformat.write(strip(nb), path)
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
