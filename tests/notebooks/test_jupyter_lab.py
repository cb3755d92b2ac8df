"""The README's ``.venv/bin/jupyter lab notebooks/``: the server starts, lists the six
notebooks, opens a notebook with this environment's kernel, and in Debian's Chromium runs the
quick start to the end with its plotly figure drawn.

JupyterLab runs as a real subprocess on a free local port, in a temporary folder holding a
copy of ``notebooks/`` (so its checkpoints and any autosave stay out of the checkout), with
its configuration, runtime and workspace folders there too. It is driven over its REST API
and, for the browser test, through its own commands (``expose_app_in_browser`` makes them
reachable from the page; nothing else differs from the README's command). As root (a
container) it is started with ``--allow-root``, as the README says. The browser may reach
the local server only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websocket
from playwright.sync_api import Route, expect, sync_playwright

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = ROOT / "reports" / "notebook-01_quickstart.png"
COMMAND = ".venv/bin/jupyter lab notebooks/"
"""The command the README gives."""
JUPYTER = Path(sys.prefix) / "bin" / "jupyter"
TOKEN = "notebooks-test-token"
NOTEBOOKS = [
    "01_quickstart.ipynb",
    "02_golden_suite.ipynb",
    "03_single_vs_multi.ipynb",
    "04_model_upgrade.ipynb",
    "05_safety.ipynb",
    "06_scale_out.ipynb",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """``jupyter lab notebooks/`` from the repository's root, as the README says."""
    assert COMMAND in (ROOT / "README.md").read_text(encoding="utf-8")
    tmp_path = tmp_path_factory.mktemp("jupyter")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "AGENTLAB_HOME": str(tmp_path / "home"),
    }
    log = (tmp_path / "lab.log").open("w")
    process = subprocess.Popen(
        [
            str(JUPYTER), "lab", "notebooks/", "--no-browser", "--ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
            "--LabApp.expose_app_in_browser=True",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"token {TOKEN}"},
        timeout=30,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited: {(tmp_path / 'lab.log').read_text()}")
            try:
                if client.get("/api/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not start: {(tmp_path / 'lab.log').read_text()}")
            time.sleep(0.25)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_jupyter_lab_opens_with_the_notebooks_ready_to_run(lab: httpx.Client) -> None:
    page = lab.get("/lab")
    assert page.status_code == 200
    assert "JupyterLab" in page.text

    listing = lab.get("/api/contents").json()
    names = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
    assert names == NOTEBOOKS
    specs = lab.get("/api/kernelspecs").json()
    assert specs["default"] == "python3"
    for name in NOTEBOOKS:
        notebook = lab.get(f"/api/contents/{name}").json()["content"]
        assert notebook["metadata"]["kernelspec"]["name"] == "python3"

    # open the first notebook as JupyterLab does: a session with its kernel, which comes up
    session = lab.post(
        "/api/sessions",
        json={"path": NOTEBOOKS[0], "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert session.status_code == 201
    kernel_id = session.json()["kernel"]["id"]
    # run a cell in it over the kernel's websocket, as the notebook page does
    printed = run_cell(lab, kernel_id, "import sys, agentlab; print(sys.prefix)")
    assert printed.strip() == sys.prefix
    assert lab.delete(f"/api/sessions/{session.json()['id']}").status_code == 204


def run_cell(lab: httpx.Client, kernel_id: str, code: str) -> str:
    """Execute ``code`` in the kernel through JupyterLab's websocket; what it printed."""
    url = str(lab.base_url).replace("http://", "ws://")
    ws = websocket.create_connection(
        f"{url}/api/kernels/{kernel_id}/channels?token={TOKEN}", timeout=90
    )
    msg_id = uuid.uuid4().hex
    try:
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                        "session": uuid.uuid4().hex, "version": "5.3", "date": "",
                    },
                    "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                    "content": {
                        "code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True,
                    },
                }
            )
        )  # fmt: skip
        printed: list[str] = []
        replied = idle = False
        # the reply comes on shell, the output and the final idle status on iopub
        while not (replied and idle):
            msg = json.loads(ws.recv())
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                pytest.fail(f"the cell failed: {content['evalue']}")
            elif kind == "execute_reply":
                assert content["status"] == "ok"
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        return "".join(printed)
    finally:
        ws.close()


KERNEL_IDLE = (
    "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status"
    " === 'idle'"
)

EXECUTION_COUNTS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    const counts = [];
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type === "code") counts.push(cell.executionCount);
    }
    return counts;
}"""


def test_the_quickstart_runs_in_jupyterlab_and_draws_its_figure(lab: httpx.Client) -> None:
    problems: list[str] = []

    def refuse(route: Route) -> None:
        problems.append(f"fetched {route.request.url}")
        route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.route(re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/])"), refuse)
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
            page.goto(f"{lab.base_url}/lab/tree/{NOTEBOOKS[0]}?token={TOKEN}")
            page.wait_for_function(KERNEL_IDLE, timeout=90_000)

            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            figure = page.locator(".jp-OutputArea .js-plotly-plot")
            expect(figure).to_have_count(1, timeout=180_000)
            expect(figure.locator(".barlayer .trace").first).to_be_attached()
            page.wait_for_function(KERNEL_IDLE, timeout=180_000)
            # every code cell ran, in order (read from the notebook's model: JupyterLab draws
            # only the cells in view)
            counts = page.evaluate(EXECUTION_COUNTS)
            assert counts == list(range(counts[0], counts[0] + len(counts))), counts
            errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]')
            expect(errors).to_have_count(0)
            figure.scroll_into_view_if_needed()
            page.screenshot(path=SCREENSHOT)
        finally:
            browser.close()
    assert problems == []
