"""The PostgreSQL experiment log: the ExperimentLog contract (with DuckDB's metrics store beside
it), the record-once rule under concurrent writers, and a suite recorded, resumed and copied
into DuckDB."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from agentlab.adapters.postgres_experiments import PostgresExperimentLog, RecordedRuns
from agentlab.adapters.postgres_store import PostgresEventStore
from agentlab.core.clock import TickingClock
from agentlab.core.errors import BackendError, ConfigError, StoreError
from agentlab.lab import run_suite
from agentlab.lab.experiment_logs import open_experiment_log
from agentlab.lab.metrics import MetricsStore, open_metrics
from agentlab.lab.metrics.transfer import copy_experiments
from agentlab.lab.results import RunResult
from tests.contracts.experiment_log import ExperimentLogContract, OpenLog, rich
from tests.unit.report._runs import result, run_events, spec


class TestExperimentLogs(ExperimentLogContract):
    @pytest.fixture(params=["duckdb", "postgresql"])
    def open_log(self, request: pytest.FixtureRequest, tmp_path: Path) -> OpenLog:
        clock = TickingClock(tick=timedelta(seconds=1))
        if request.param == "duckdb":
            return lambda: open_experiment_log(tmp_path / "lab.duckdb", clock=clock)
        url = request.getfixturevalue("pg_url")
        return lambda: open_experiment_log(url, clock=clock)


@pytest.fixture
def log(pg_url: str) -> Iterator[PostgresExperimentLog]:
    with PostgresExperimentLog(pg_url, recorded_by="worker-a", clock=TickingClock()) as opened:
        yield opened


def counts(url: str, experiment_id: str) -> tuple[int, int]:
    """(runs, events) as the database holds them, counted by a plain connection."""
    with psycopg.connect(url) as conn:
        (runs,) = conn.execute(
            "SELECT count(*) FROM lab_runs WHERE experiment_id = %s", [experiment_id]
        ).fetchone() or (0,)
        (events,) = conn.execute(
            "SELECT count(*) FROM lab_run_events WHERE experiment_id = %s", [experiment_id]
        ).fetchone() or (0,)
    return runs, events


# --- record once ------------------------------------------------------------------------------


def test_a_recorded_run_is_not_replaced_by_a_later_duplicate(
    log: PostgresExperimentLog, pg_url: str
) -> None:
    experiment_id = log.start_experiment(spec()).experiment_id
    first = result("a", experiment_id=experiment_id, run_id="run_1")
    events = run_events("run_1")
    assert log.record_runs(experiment_id, [(first, events)]) == RecordedRuns(1, 0, 0)

    with PostgresExperimentLog(pg_url, recorded_by="worker-b") as other:
        late = result("a", experiment_id=experiment_id, run_id="run_2", success=False)
        fresh = result("b", experiment_id=experiment_id, run_id="run_3")
        got = other.record_runs(
            experiment_id, [(late, run_events("run_2")), (fresh, run_events("run_3"))]
        )
    assert got == RecordedRuns(new=1, replaced=0, duplicates=1)
    assert [r for r in log.results(experiment_id) if r.task_id == "a"] == [first]
    assert log.events(experiment_id, "a") == events
    assert counts(pg_url, experiment_id) == (2, 2 * len(events))
    assert log.run_counts(experiment_id).by_worker == {"worker-a": 1, "worker-b": 1}
    assert log.recorded_by([experiment_id, "exp-other"]) == {"worker-a": 1, "worker-b": 1}


def test_an_errored_run_is_replaced_with_its_events_and_counted_as_replaced(
    log: PostgresExperimentLog, pg_url: str
) -> None:
    experiment_id = log.start_experiment(spec()).experiment_id
    # an errored run that got as far as some events (a tool's system went away mid-run)
    errored = result("a", experiment_id=experiment_id, success=False, status="error", error="x")
    log.record_runs(experiment_id, [(errored, run_events("run_1")[:3])])
    assert log.run_counts(experiment_id)[:3] == (1, 1, 3)
    again = result("a", experiment_id=experiment_id, success=False, status="error", error="y")
    assert log.record_runs(experiment_id, [(again, [])]) == RecordedRuns(0, 1, 0)
    assert log.events(experiment_id, "a") == []

    rerun = result("a", experiment_id=experiment_id, run_id="run_2")
    assert log.record_runs(experiment_id, [(rerun, run_events("run_2"))]) == RecordedRuns(0, 1, 0)
    assert log.results(experiment_id) == [rerun]
    assert log.events(experiment_id, "a") == run_events("run_2")
    # and a late errored attempt does not undo the good run
    assert log.record_runs(experiment_id, [(errored, [])]) == RecordedRuns(0, 0, 1)
    assert log.results(experiment_id) == [rerun]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT attempts FROM lab_runs").fetchall() == [(3,)]


def test_the_same_runs_written_by_many_threads_at_once_end_up_once(
    log: PostgresExperimentLog, pg_url: str
) -> None:
    experiment_id = log.start_experiment(spec()).experiment_id
    runs = [
        (result(f"t{n:02}", experiment_id=experiment_id, run_id=f"run_{n}"), run_events(f"run_{n}"))
        for n in range(12)
    ]
    writers = 6
    start = threading.Barrier(writers)
    told: list[RecordedRuns] = []
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        # each writer its own pool, and batches in another order (a deadlock would show here)
        batch = runs[worker % 3 :] + runs[: worker % 3]
        batch = batch if worker % 2 else batch[::-1]
        try:
            with PostgresExperimentLog(pg_url, recorded_by=f"w{worker}") as mine:
                start.wait()
                told.append(mine.record_runs(experiment_id, batch))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(t.new for t in told) == len(runs)
    assert sum(t.duplicates for t in told) == (writers - 1) * len(runs)
    assert counts(pg_url, experiment_id) == (len(runs), sum(len(e) for _, e in runs))
    for run, events in runs:
        assert log.events(experiment_id, run.task_id) == events


def _record_in_a_process(url: str, experiment_id: str, worker: int, go: Any) -> None:
    runs = [
        (
            result(f"t{n:02}", experiment_id=experiment_id, run_id=f"run_{n}_{worker}"),
            run_events(f"run_{n}_{worker}"),
        )
        for n in range(20)
    ]
    with PostgresExperimentLog(url, recorded_by=f"process-{worker}") as log:
        go.wait()
        for n in range(0, len(runs), 4):
            log.record_runs(experiment_id, runs[n : n + 4])


def test_two_processes_recording_the_same_runs_leave_each_run_once_with_one_writers_events(
    log: PostgresExperimentLog, pg_url: str
) -> None:
    experiment_id = log.start_experiment(spec()).experiment_id
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    workers = [
        context.Process(target=_record_in_a_process, args=(pg_url, experiment_id, w, go))
        for w in range(2)
    ]
    for worker in workers:
        worker.start()
    go.set()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    results = log.results(experiment_id)
    assert len(results) == 20
    for run in results:
        # the run and its events came from the same writer
        events = log.events(experiment_id, run.task_id)
        assert {str(e.run_id) for e in events} == {run.run_id}
    by_worker = log.run_counts(experiment_id).by_worker
    assert sum(by_worker.values()) == 20
    assert counts(pg_url, experiment_id) == (20, 20 * len(run_events("run_counted")))


# --- opening ----------------------------------------------------------------------------------


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql://lab:s3cret-pw@127.0.0.1:1/agentlab"
    with pytest.raises(BackendError) as caught:
        PostgresExperimentLog(url)
    assert "127.0.0.1:1/agentlab" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
    assert "lab:***@" in str(caught.value)


def test_it_shares_a_database_with_the_event_store_and_opens_again(pg_url: str) -> None:
    with PostgresEventStore(pg_url), PostgresExperimentLog(pg_url) as log:
        experiment = log.start_experiment(spec())
    with PostgresExperimentLog(pg_url) as log:
        assert log.experiment(experiment.experiment_id) == experiment
    with psycopg.connect(pg_url) as conn:
        rows = dict(conn.execute("SELECT key, value FROM agentlab_meta").fetchall())
    assert rows["experiment_log_version"] == "1"
    assert rows["schema_version"] == "1"  # the event store's, untouched


def test_open_experiment_log_chooses_by_url(pg_url: str, tmp_path: Path) -> None:
    with open_experiment_log(pg_url, recorded_by="w1") as log:
        assert isinstance(log, PostgresExperimentLog)
        assert log.writer == "w1"
    with open_experiment_log(f"duckdb://{tmp_path / 'a.duckdb'}") as log:
        assert isinstance(log, MetricsStore)
    with open_experiment_log(tmp_path / "b.duckdb") as log:
        assert isinstance(log, MetricsStore)
    with pytest.raises(ConfigError, match="'redis'"):
        open_experiment_log("redis://localhost")


# --- into DuckDB ------------------------------------------------------------------------------


def test_copy_experiments_brings_finished_ones_over_once(
    log: PostgresExperimentLog, tmp_path: Path
) -> None:
    done = log.start_experiment(spec(), label="nightly")
    # pages of 2 end inside a task's repetitions; "B" sorts before "a" (bytes, as DuckDB)
    keys = [(task, rep) for task in ("a", "B", "b") for rep in range(3)][:7]
    runs = [
        (rich(task, done.experiment_id, run_id=f"run_{n}").model_copy(update={"repetition": rep}),
         run_events(f"run_{n}"))
        for n, (task, rep) in enumerate(keys)
    ]  # fmt: skip
    log.record_runs(done.experiment_id, runs)
    done = log.finish_experiment(done.experiment_id)
    running = log.start_experiment(spec(model="sim-small"))
    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        assert copy_experiments(log, metrics, batch_size=2) == [done.experiment_id]
        assert copy_experiments(log, metrics) == []  # nothing new
        assert metrics.experiment(done.experiment_id) == done
        assert metrics.results(done.experiment_id) == log.results(done.experiment_id)
        assert len(metrics.events("run_3", done.experiment_id)) == len(run_events("run_3"))
        held = metrics.sql(
            "SELECT count(*) AS n FROM events WHERE experiment_id = ?", [done.experiment_id]
        )
        assert held["n"].iloc[0] == 7 * len(run_events("run_counted"))
        assert len(metrics.steps(done.experiment_id)) == 7 * 4
        assert list(metrics.kpis()["runs"]) == [7]
        # named, an unfinished experiment is copied too; named twice, it is refused
        assert copy_experiments(log, metrics, [running.experiment_id]) == [running.experiment_id]
        with pytest.raises(StoreError, match="already holds"):
            copy_experiments(log, metrics, [done.experiment_id])
        with pytest.raises(StoreError, match="no experiment"):
            copy_experiments(log, metrics, ["exp-missing"])


# --- a suite end to end -----------------------------------------------------------------------

TASKS = ["po-toner", "kb-vpn", "inj-ticket-driver-comment", "exfiltrate"]
OPTIONS: dict[str, Any] = {
    "config": "single", "model": "sim-large", "mode": "replay", "tasks": TASKS, "concurrency": 1,
}  # fmt: skip


class Interrupted(Exception):
    """Stands in for the worker being stopped."""


def test_a_suite_recorded_in_postgres_resumes_and_copies_into_duckdb_as_a_direct_run(
    pg_url: str, tmp_path: Path
) -> None:
    def stop_after_two(result: RunResult, done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    with PostgresExperimentLog(pg_url, recorded_by="worker-1") as log:
        with pytest.raises(Interrupted):
            run_suite("helpdesk", metrics=log, on_result=stop_after_two, **OPTIONS)
        (stopped,) = log.experiments()
        assert stopped.finished_at is None
        kept = log.finished_runs(stopped.experiment_id)
        assert len(kept) == 2
    with PostgresExperimentLog(pg_url, recorded_by="worker-2") as log:
        told: list[str] = []
        resumed = run_suite(
            "helpdesk", metrics=log, on_result=lambda r, d, t: told.append(r.task_id), **OPTIONS
        )
        experiment_id = resumed.experiment.experiment_id
        assert experiment_id == stopped.experiment_id
        assert set(told) == set(TASKS) - {task for task, _ in kept}
        assert log.experiment(experiment_id).finished_at is not None
        assert log.run_counts(experiment_id).by_worker == {"worker-1": 2, "worker-2": 2}
        assert [r.task_id for r in resumed.results] == TASKS

        with open_metrics(tmp_path / "copied.duckdb") as copied:
            assert copy_experiments(log, copied) == [experiment_id]
            copied_kpis = copied.kpis()
            copied_results = copied.results(experiment_id)
            copied_events = copied.sql(
                "SELECT task_id, seq, kind, payload FROM events ORDER BY task_id, seq"
            )
    with open_metrics(tmp_path / "direct.duckdb") as direct:
        straight = run_suite("helpdesk", metrics=direct, **OPTIONS)
        direct_kpis = direct.kpis()
        direct_results = direct.results(straight.experiment.experiment_id)
        direct_events = direct.sql(
            "SELECT task_id, seq, kind, payload FROM events ORDER BY task_id, seq"
        )

    assert copied_results == [
        r.model_copy(update={"experiment_id": experiment_id}) for r in direct_results
    ]
    when = ["experiment_id", "started_at", "finished_at"]
    pd.testing.assert_frame_equal(copied_kpis.drop(columns=when), direct_kpis.drop(columns=when))
    assert copied_kpis["runs"].iloc[0] == len(TASKS)
    pd.testing.assert_frame_equal(copied_events, direct_events)
    assert len(copied_events) > len(TASKS)
