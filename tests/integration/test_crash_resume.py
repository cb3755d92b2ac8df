"""A run whose process is SIGKILLed resumes from what it wrote and never repeats a commit.

The worker (``tests/integration/_crash_worker.py``) runs in a real child process against a
DuckDB file or a PostgreSQL database, says on stdout how far it got, and is killed there. The
test then opens the same store URL, as a restarted process would, and resumes the run.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, NamedTuple

import pytest

from agentlab.adapters import open_store
from agentlab.core.errors import DuplicateIdempotencyKey
from agentlab.core.events import StepCommitted
from agentlab.core.ids import IdFactory, RunId, derive_idempotency_key
from agentlab.store import RunRecorder, project_run
from tests.integration._crash_worker import ARGUMENTS, FIRST_RESULT, SEED, TOOL

REPO = Path(__file__).parents[2]
WORKER = "tests.integration._crash_worker"
READY_WITHIN_S = 60.0
"""A guard against a hung worker, not a performance bound."""

_WORKER_IDS = IdFactory.seeded(SEED)
RUN_ID = _WORKER_IDS.run_id()
"""The run id the worker's seeded factory hands out first: known without asking the worker."""
STEP_ID = _WORKER_IDS.step_id()
"""The id of the worker's only step, the next one its factory hands out."""
KEY = derive_idempotency_key(RUN_ID, 0, TOOL, ARGUMENTS)
"""The key of the worker's write: its first step, so position 0."""


class Killed(NamedTuple):
    """What the worker said before it was killed."""

    word: str
    run_id: RunId
    step_id: str
    key: str


@pytest.fixture(params=["duckdb", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'crash' / 'runs.duckdb'}"
    return str(request.getfixturevalue("pg_url"))


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # end of file: the worker exited or was killed


def run_worker_and_kill(store_url: str, stop_point: str, tmp_path: Path) -> Killed:
    """Start the worker, wait for its line (bounded), SIGKILL it, and wait until it is gone."""
    stderr_path = tmp_path / f"worker_{stop_point}.stderr"
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    lines: queue.Queue[str | None] = queue.Queue()
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", WORKER, store_url, stop_point],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=os.environ | {"PYTHONPATH": python_path},
        ) as proc,
    ):
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            line = lines.get(timeout=READY_WITHIN_S)
        except queue.Empty:
            line = None
        alive_when_told = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()  # the process is gone, so it holds no DuckDB file lock nor connection
        reader.join()
    worker_stderr = stderr_path.read_text()
    assert line is not None, f"the worker said nothing within the guard:\n{worker_stderr}"
    assert alive_when_told, f"the worker exited on its own:\n{worker_stderr}"
    assert proc.returncode == -signal.SIGKILL
    word, run_id, step_id, key = line.split()
    return Killed(word, RunId(run_id), step_id, key)


def test_a_run_killed_after_its_commit_resumes_without_committing_again(
    store_url: str, tmp_path: Path
) -> None:
    killed = run_worker_and_kill(store_url, "committed", tmp_path)
    assert killed == Killed("COMMITTED", RUN_ID, STEP_ID, KEY)

    with open_store(store_url) as store:
        before = [e.kind for e in store.read(RUN_ID)]
        resumed, state = RunRecorder.resume(
            store, RUN_ID, reason="worker was killed", ids=IdFactory.seeded(SEED + 1)
        )
        assert state.status == "running"
        assert STEP_ID not in [s.step.step_id for s in state.open_steps]
        assert state.committed_keys == {KEY}

        order = state.steps[STEP_ID].step
        with pytest.raises(DuplicateIdempotencyKey):
            resumed.commit(order, {"po_id": "PO-000002"}, latency_ms=240.0)
        recorded = store.find_commit(KEY)
        assert isinstance(recorded, StepCommitted)
        assert (recorded.run_id, recorded.step_id, recorded.result) == (
            RUN_ID,
            STEP_ID,
            FIRST_RESULT,
        )

        resumed.finish("succeeded", answer="Ordered: PO-000001")
        after = store.read(RUN_ID)

    assert before == [
        "run_started",
        "step_proposed",
        "step_dry_run_completed",
        "step_approved",
        "step_committed",
    ]
    commits = [e for e in after if isinstance(e, StepCommitted)]
    assert [c.idempotency_key for c in commits] == [KEY]
    assert [e.kind for e in after].count("run_resumed") == 1
    final = project_run(after)
    assert (final.status, final.times_resumed) == ("succeeded", 1)


def test_a_run_killed_after_approval_resumes_and_commits_once(
    store_url: str, tmp_path: Path
) -> None:
    killed = run_worker_and_kill(store_url, "approved", tmp_path)
    assert killed == Killed("APPROVED", RUN_ID, STEP_ID, KEY)

    with open_store(store_url) as store:
        resumed, state = RunRecorder.resume(store, RUN_ID, ids=IdFactory.seeded(SEED + 1))
        assert [(s.step.step_id, s.status) for s in state.open_steps] == [(STEP_ID, "approved")]
        assert state.committed_keys == frozenset()
        assert store.find_commit(KEY) is None

        resumed.commit(state.open_steps[0].step, FIRST_RESULT, latency_ms=240.0)
        recorded = store.find_commit(KEY)
        assert recorded is not None
        assert recorded.result == FIRST_RESULT
        resumed.finish("succeeded")
        after = store.read(RUN_ID)

    commits = [e for e in after if isinstance(e, StepCommitted)]
    assert [(c.step_id, c.idempotency_key) for c in commits] == [(STEP_ID, KEY)]
    final = project_run(after)
    assert final.status == "succeeded"
    assert final.committed_keys == {KEY}
    assert final.open_steps == []
    assert final.times_resumed == 1
