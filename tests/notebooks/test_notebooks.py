"""Every notebook executed top to bottom by a real Jupyter kernel, on the embedded defaults.

The kernel is ipykernel started by nbclient from this environment's Python (jupyter_client
runs a kernelspec whose command is ``python`` with ``sys.executable``), with the notebook
folder as its working directory and AGENTLAB_HOME in the test's temporary folder, so the
notebooks' metrics files land there. The replays read only the committed cassettes: nothing
is fetched. A cell that raises fails the test (nbclient raises ``CellExecutionError``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

from tests.notebooks.strip import leftovers, main

ROOT = Path(__file__).parents[2]
FOLDER = ROOT / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = [
    "01_quickstart",
    "02_golden_suite",
    "03_single_vs_multi",
    "04_model_upgrade",
    "05_safety",
    "06_scale_out",
]
CONFIGURATIONS = (
    "Chat (RAG only)",
    "Single agent (Plan + Tool)",
    "Multi-agent (Planner/Verifier separated)",
)
PLOTLY = "application/vnd.plotly.v1+json"


OFFLINE = """
import ipaddress, socket

_connect = socket.socket.connect

def _is_local(host):
    try:
        return host in ("localhost", "") or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

def _local_only(self, address):
    if isinstance(address, tuple) and not _is_local(str(address[0])):
        raise OSError(f"the notebook tried to reach {address!r}; notebooks run offline")
    return _connect(self, address)

socket.socket.connect = _local_only
"""
"""Run first in the kernel (not saved in the notebook): the conftest's network guard."""


def execute(nb: NotebookNode, home: Path, monkeypatch: pytest.MonkeyPatch) -> NotebookNode:
    """Run every cell of ``nb`` in a fresh kernel, offline, after the network guard."""
    monkeypatch.setenv("AGENTLAB_HOME", str(home))  # the kernel inherits it
    nb.cells.insert(0, nbformat.v4.new_code_cell(OFFLINE))
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(FOLDER)}},
    )
    try:
        client.execute()
    finally:
        nb.cells.pop(0)
    return nb


def test_the_kernel_cannot_reach_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.v4.new_notebook()
    reach = "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=5)"
    nb.cells = [nbformat.v4.new_code_cell(reach)]
    with pytest.raises(CellExecutionError, match="notebooks run offline"):
        execute(nb, tmp_path, monkeypatch)


def tagged(nb: NotebookNode, tag: str) -> NotebookNode:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected"
    return cells[0]


def text_of(cell: NotebookNode) -> str:
    """What a cell showed: its text/plain and text/html results and printed output."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        for kind in ("text/plain", "text/html"):
            parts.append(output.get("data", {}).get(kind, ""))
    return "\n".join(parts)


def figures(nb: NotebookNode) -> list[dict]:
    return [
        output["data"][PLOTLY]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if PLOTLY in output.get("data", {})
    ]


def test_the_six_notebooks_are_here() -> None:
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_carry_no_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert [c for c in nb.cells if c.cell_type == "code"]
    assert leftovers(nb) == [], f"strip it: .venv/bin/python -m tests.notebooks.strip {path}"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_strip_leaves_only_the_source_and_the_tags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a"), nbformat.v4.new_code_cell("print(1)")]
    nb.cells[1].metadata["tags"] = ["key"]
    execute(nb, tmp_path, monkeypatch)
    assert leftovers(nb) == [
        "cell 1: outputs",
        "cell 1: execution_count",
        "cell 1: metadata execution",
    ]
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)

    assert main([str(path)]) == 0

    stripped = nbformat.read(path, as_version=4)
    assert leftovers(stripped) == []
    assert stripped.cells[1].source == "print(1)"
    assert stripped.cells[1].metadata == {"tags": ["key"]}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_says_what_it_shows_and_that_the_model_is_the_simulator(
    path: Path,
) -> None:
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    assert title.cell_type == "markdown"
    assert title.source.startswith(f"# {path.stem[:2]} · ")
    assert "offline simulator" in title.source
    assert "never a vendor's model" in title.source


def test_the_kernel_is_this_environments_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.v4.new_notebook()
    source = "import json, os, sys\nprint(json.dumps([sys.prefix, os.getcwd()]))"
    nb.cells = [nbformat.v4.new_code_cell(source)]
    execute(nb, tmp_path, monkeypatch)
    prefix, cwd = json.loads(nb.cells[0].outputs[0].text)
    assert prefix == sys.prefix
    assert Path(cwd) == FOLDER


def test_a_failing_cell_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('the third cell never runs')"),
        nbformat.v4.new_code_cell("x = 2"),
    ]
    with pytest.raises(CellExecutionError, match="the third cell never runs"):
        execute(nb, tmp_path, monkeypatch)
    assert nb.cells[2].outputs == []


def test_01_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute(nbformat.read(FOLDER / "01_quickstart.ipynb", as_version=4), tmp_path, monkeypatch)
    trail = text_of(tagged(nb, "audit-trail"))
    for decision in ("proposed", "dry_run", "approved", "committed"):
        assert decision in trail
    assert "policy:po_up_to_5000_usd" in trail
    timeline = next(f for f in figures(nb) if "phase4-order-and-notify" in str(f["layout"]))
    lanes = {trace["name"] for trace in timeline["data"]}
    assert {"plan", "tool call", "dry-run", "approval", "verification"} <= lanes
    assert (tmp_path / "notebooks" / "01_quickstart.duckdb").is_file()


def test_02_golden_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute(
        nbformat.read(FOLDER / "02_golden_suite.ipynb", as_version=4), tmp_path, monkeypatch
    )
    kpi_table = text_of(tagged(nb, "kpi-table"))
    for configuration in CONFIGURATIONS:
        assert configuration in kpi_table
    titles = [str(f["layout"].get("title", {}).get("text", "")) for f in figures(nb)]
    assert "KPIs by configuration" in titles
    assert any(t.startswith("Failed runs by cause") for t in titles)
    assert any("· single · sim-large (simulator)" in t for t in titles)


def test_03_single_vs_multi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute(
        nbformat.read(FOLDER / "03_single_vs_multi.ipynb", as_version=4), tmp_path, monkeypatch
    )
    table = text_of(tagged(nb, "benchmark-table"))
    for configuration in CONFIGURATIONS:
        assert configuration in table
    assert "success rate low" in table
    changes = text_of(tagged(nb, "verifier-changes"))
    assert "phase3-comment" in changes
    assert "fixed by multi" in changes
    tradeoff = next(f for f in figures(nb) if "bootstrap intervals" in str(f["layout"]))
    assert [trace["name"] for trace in tradeoff["data"]] == list(CONFIGURATIONS)


def test_04_model_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute(
        nbformat.read(FOLDER / "04_model_upgrade.ipynb", as_version=4), tmp_path, monkeypatch
    )
    diffs = text_of(tagged(nb, "effect-diffs"))
    assert "regressed" in diffs
    assert "removed" in diffs
    titles = [str(f["layout"].get("title", {}).get("text", "")) for f in figures(nb)]
    assert "single · sim-small (upgrade) vs single · sim-large (recorded)" in titles


def test_05_safety(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute(nbformat.read(FOLDER / "05_safety.ipynb", as_version=4), tmp_path, monkeypatch)
    table = text_of(tagged(nb, "safety-table"))
    for column in ("success_rate", "policy_blocks", "got_through", "safety_violations"):
        assert column in table
    for config in ("chat_rag", "single", "multi"):
        assert config in table
    titles = [str(f["layout"].get("title", {}).get("text", "")) for f in figures(nb)]
    assert any(t.startswith("Safety next to success") for t in titles)


def test_06_scale_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENTLAB_CLUSTER_STORE_URL", "AGENTLAB_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)  # the notebook starts its own servers
    nb = execute(nbformat.read(FOLDER / "06_scale_out.ipynb", as_version=4), tmp_path, monkeypatch)
    workers = tagged(nb, "workers").outputs[0]["data"]["text/plain"]
    counts = [int(line.split()[-1]) for line in workers.splitlines()[1:]]
    assert len(counts) == 2, workers
    assert all(counts), workers  # both workers recorded runs
    kpis = text_of(tagged(nb, "kpi-table"))
    for configuration in CONFIGURATIONS:
        assert configuration in kpis
    caps = tagged(nb, "caps").outputs[-1]["data"]["text/plain"]
    rows = {line.split()[1]: line.split()[2:] for line in caps.splitlines()[1:]}
    for system in ("erp_api", "email_send"):
        cap, peak = (int(float(x)) for x in rows[system])
        assert 1 <= peak <= cap, caps
    assert (tmp_path / "notebooks" / "06_scale_out.duckdb").is_file()
