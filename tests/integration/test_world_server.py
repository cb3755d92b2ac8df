"""`agentlab world serve` is a real server: a process, a socket, and a clean stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from agentlab.cli import app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_served_world_takes_an_order_and_reports_its_diff() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "agentlab.cli", "world", "serve", "--port", str(port)],
        cwd=Path(__file__).parents[2],
        stderr=subprocess.PIPE,
        text=True,
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
        created = httpx.post(
            f"{url}/erp/purchase-orders",
            json={
                "supplier_id": "SUP-000101",
                "items": [{"sku": "PEN-BK-12", "qty": 3}],
                "dry_run": False,
            },
            headers={"Idempotency-Key": "served-world-key-01"},
        )
        assert created.status_code == 201

        result = CliRunner().invoke(app, ["world", "diff", "--url", url])
        assert result.exit_code == 0, result.output
        assert '"po_id": "PO-000001"' in result.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=20)  # also closes the pipe
    assert server.returncode == 0, stderr
    assert f"sandbox world on {url}" in stderr


def test_world_diff_against_no_server_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["world", "diff", "--url", f"http://127.0.0.1:{_free_port()}"])
    assert result.exit_code == 2
    assert "agentlab world serve" in result.output
