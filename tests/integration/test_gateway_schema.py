"""schemathesis against a live ``agentlab serve``: nothing the spec allows (or breaks) is a 5xx.

The spec is the repository's ``docs/openapi.json`` (a unit test keeps it current). The
gateway runs as its own process -- the real command, with a token file, the simulator and the
world in-process, traces to the store -- so the server's threads cannot disturb Hypothesis'
random state in this one. Each operation gets a bounded number of generated requests, sent
with a token that holds every scope, so that they reach the handlers rather than stopping at
401/403; generated ``POST /runs`` bodies start real runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from agentlab.gateway import GATEWAY_SCOPES, issue_token
from agentlab.ops import load_spans

SPEC = Path(__file__).parents[2] / "docs" / "openapi.json"
schema = schemathesis.openapi.from_path(str(SPEC))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``agentlab serve`` in a subprocess: its base URL and a token with every scope."""
    home = tmp_path_factory.mktemp("gateway_home")
    issued = issue_token(
        home / "tokens.yaml",
        name="fuzz",
        actor="alice",
        scopes=(*GATEWAY_SCOPES, "erp:write", "mail:send"),
    )
    port = free_port()
    env = {**os.environ, "AGENTLAB_HOME": str(home)}
    env.pop("AGENTLAB_OTLP_ENDPOINT", None)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    command = [
        *(sys.executable, "-m", "agentlab.cli", "serve", "--port", str(port)),
        *("--store", "memory://", "--audit", "memory://", "--checkpoints", "memory"),
        "--max-concurrent-runs=2",
    ]
    log = (home / "serve.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"agentlab serve did not start:\n{(home / 'serve.log').read_text()}"
                )
            time.sleep(0.1)
        yield url, issued.token
        # the fuzzing reached the handlers: runs were started, and the server still answers
        headers = {"Authorization": f"Bearer {issued.token}"}
        runs = httpx.get(f"{url}/runs", headers=headers, timeout=30)
        assert runs.status_code == 200
        assert runs.json(), "no generated POST /runs started a run"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert process.returncode is not None
    # the runs were traced to the store, and the spans flushed as the server stopped
    names = {span["name"] for span in load_spans(f"duckdb://{home / 'spans.duckdb'}")}
    assert {"invoke_agent single", "node plan"} <= names
    assert issued.token not in (home / "serve.log").read_text()  # never logged
    assert issued.token not in (home / "tokens.yaml").read_text()  # only its hash is kept


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case, served: tuple[str, str]) -> None:
    url, token = served
    case.call_and_validate(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error],
        timeout=60,
    )
