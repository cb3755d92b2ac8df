"""A process that is killed mid-run loses nothing it wrote, and its side effect never repeats."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agentlab.adapters import open_store
from agentlab.core.errors import DuplicateIdempotencyKey
from agentlab.core.ids import RunId
from agentlab.store import RunRecorder, project_run
from tests.integration._kill_worker import FIRST_RESULT

REPO = Path(__file__).parents[2]


@pytest.fixture(params=["duckdb", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'runs.duckdb'}"
    return str(request.getfixturevalue("pg_url"))


def kill_worker_at(store_url: str, stop_point: str) -> tuple[RunId, str, str]:
    """Run the worker up to ``stop_point``, SIGKILL it, and return (run_id, step_id, key)."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.integration._kill_worker", store_url, stop_point],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the worker wrote its events, or died
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate()
    assert line.startswith("READY "), f"the worker failed before its stop point:\n{stderr}"
    assert proc.returncode == -signal.SIGKILL
    _, run_id, step_id, key = line.split()
    return RunId(run_id), step_id, key


def test_a_run_killed_after_its_commit_resumes_without_repeating_it(
    store_url: str,
) -> None:
    run_id, step_id, key = kill_worker_at(store_url, "after_commit")
    with open_store(store_url) as store:
        resumed, state = RunRecorder.resume(store, run_id, reason="worker was killed")
        assert state.open_steps == []
        assert state.committed_keys == {key}
        order = state.steps[step_id].step  # type: ignore[index]
        with pytest.raises(DuplicateIdempotencyKey):
            resumed.commit(order, {"po_id": "PO-000002"}, latency_ms=240)
        recorded = store.find_commit(key)
        assert recorded is not None
        assert recorded.result == FIRST_RESULT
        resumed.finish("succeeded")
        kinds = [e.kind for e in store.read(run_id)]
    assert kinds.count("step_committed") == 1
    assert kinds.count("run_resumed") == 1
    assert kinds[-1] == "run_finished"


def test_a_run_killed_before_its_commit_resumes_and_commits_once(
    store_url: str,
) -> None:
    run_id, step_id, key = kill_worker_at(store_url, "after_approval")
    with open_store(store_url) as store:
        resumed, state = RunRecorder.resume(store, run_id)
        assert [s.step.step_id for s in state.open_steps] == [step_id]
        assert state.open_steps[0].status == "approved"
        assert store.find_commit(key) is None
        resumed.commit(state.open_steps[0].step, {"po_id": "PO-000009"}, latency_ms=240)
        resumed.finish("succeeded")
        final = project_run(store.read(run_id))
    assert final.status == "succeeded"
    assert final.committed_keys == {key}
