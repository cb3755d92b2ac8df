"""A process killed between the world's commit and the commit event makes one order, not two."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from agentlab.adapters import open_store
from agentlab.store import project_run

WORKER = Path(__file__).with_name("_commit_crash_worker.py")


def _worker(
    mode: str, store_url: str, world_url: str, run_id_file: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), mode, store_url, world_url, str(run_id_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )


def test_a_kill_between_commit_and_event_write_leaves_exactly_one_order(
    tmp_path: Path, world_url: str
) -> None:
    store_url = f"duckdb://{tmp_path / 'runs.duckdb'}"
    run_id_file = tmp_path / "run_id"

    crashed = _worker("crash", store_url, world_url, run_id_file)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    orders = httpx.get(f"{world_url}/erp/purchase-orders").json()["purchase_orders"]
    assert len(orders) == 1  # the world committed ...
    with open_store(store_url) as store:
        state = project_run(store.read(run_id_file.read_text()))
    [step] = state.open_steps  # ... but the run never heard of it
    assert step.status == "approved"

    resumed = _worker("resume", store_url, world_url, run_id_file)
    assert resumed.returncode == 0, resumed.stderr
    outcome = json.loads(resumed.stdout)

    assert outcome["status"] == "ok"
    assert outcome["content"]["result"]["replayed"] is True  # the world answered from its record
    assert outcome["content"]["result"]["po_id"] == orders[0]["po_id"]
    after = httpx.get(f"{world_url}/erp/purchase-orders").json()["purchase_orders"]
    assert len(after) == 1
    with open_store(store_url) as store:
        final = project_run(store.read(run_id_file.read_text()))
    assert final.steps[step.step.step_id].status == "committed"
    assert final.committed_keys == {step.step.idempotency_key}
