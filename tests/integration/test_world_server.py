"""`agentlab world serve` is a real server: a process, a socket, and a clean stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentlab.cli import app
from agentlab.world.fixture import DEFAULT_FIXTURE

REPO = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fixture_path(tmp_path: Path) -> Path:
    """The embedded fixture with a knowledge base of its own, next to it."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "toner.md").write_text(
        "---\ndoc_id: KB-TONER\ntitle: Ordering toner\ndata_class: internal\n---\n"
        "Order toner from the vendor master's toner supplier.\n",
        encoding="utf-8",
    )
    path = tmp_path / "world.yaml"
    path.write_text(DEFAULT_FIXTURE.read_text(encoding="utf-8") + "\nkb_folder: kb\n")
    return path


@pytest.fixture
def served(fixture_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`agentlab world serve` in a subprocess; stopped with SIGINT, as Ctrl-C would."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "agentlab.cli", "world", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--fixture", str(fixture_path)], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/_world/stats", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the world did not start"
                time.sleep(0.05)
        yield url, server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
        server.communicate(timeout=20)  # also closes the pipe


def test_the_served_world_takes_an_order_and_reports_its_diff(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, server = served
    order = {"supplier_id": "SUP-000101", "items": [{"sku": "PEN-BK-12", "qty": 3}]}
    with httpx.Client(base_url=url, headers={"Idempotency-Key": "served-world-key-01"}) as http:
        created = http.post("/erp/purchase-orders", json={**order, "dry_run": False})
        replayed = http.post("/erp/purchase-orders", json={**order, "dry_run": False})
        hidden = http.get("/kb/search", params={"q": "toner"})
        found = http.get(
            "/kb/search", params={"q": "toner"}, headers={"X-Data-Classes": "internal"}
        )
    assert (created.status_code, replayed.status_code) == (201, 200)
    assert created.json()["total_usd"] == 19.5
    assert replayed.json()["replayed"] is True
    assert hidden.json() == {"articles": []}
    assert [a["doc_id"] for a in found.json()["articles"]] == ["KB-TONER"]

    diff = CliRunner().invoke(app, ["world", "diff", "--url", url])
    assert diff.exit_code == 0, diff.output
    assert [o["po_id"] for o in json.loads(diff.stdout)["erp.purchase_orders"]["added"]] == [
        "PO-000001"
    ]
    snapshot = CliRunner().invoke(app, ["world", "snapshot"], env={"AGENTLAB_WORLD_URL": url})
    assert snapshot.exit_code == 0, snapshot.output
    assert json.loads(snapshot.stdout)["kb"]["articles"][0]["doc_id"] == "KB-TONER"

    server.send_signal(signal.SIGINT)
    _, stderr = server.communicate(timeout=20)
    assert server.returncode == 0, stderr
    assert f"sandbox world on {url}" in stderr


def test_world_diff_against_no_server_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["world", "diff", "--url", f"http://127.0.0.1:{_free_port()}"])
    assert result.exit_code == 2
    assert "agentlab world serve" in result.output


def test_serving_a_bad_fixture_fails_with_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text("erp: {suppliers: [], inventory: []}\nmail: {known_domains: [x]}\n")
    wide = {"COLUMNS": "1000"}  # so that rich does not wrap the message
    result = CliRunner().invoke(app, ["world", "serve", "--fixture", str(path)], env=wide)
    assert result.exit_code == 2
    assert f"{path}:2: field 'mail.known_domains.0'" in result.output
