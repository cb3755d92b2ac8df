"""The contract every ExperimentLog backend passes (the DuckDB metrics store, PostgreSQL).

These are the behaviours ``arun_suite(metrics=...)`` relies on to record a suite and resume
it: start, record, finished_runs, results, unfinished_experiment, finish. Subclass with an
``open_log`` fixture: a callable that opens the backend's log, the same log each time it is
called (so a test can close it and open it again), with a ticking clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agentlab.core.errors import StoreClosed, StoreError
from agentlab.lab.results import CheckResult, Divergence, RunResult, SideEffectRecord
from tests.unit.report._runs import mail, result, run_events, spec

OpenLog = Callable[[], Any]
"""Opens the log under test (MetricsStore or PostgresExperimentLog): an ExperimentLog with
``experiment``, ``close`` and the context manager."""


def rich(task_id: str, experiment_id: str, *, run_id: str | None = None) -> RunResult:
    """A run with every kind of field filled: nested checks, side effects, divergences, a diff."""
    return result(
        task_id,
        experiment_id=experiment_id,
        run_id=run_id or f"run_{task_id}",
        success=False,
        checks=(
            CheckResult(name="status", passed=True),
            CheckResult(name="world", passed=False, detail="ticket T-1 «résolu» ≠ open"),
        ),
        side_effects=(mail("ana@example.org"), SideEffectRecord(tool="x", arguments={"n": [1]})),
        divergences=(
            Divergence(
                kind="unrecorded", target="tool", method="POST", path="/mail", is_write=True,
                summary="send_mail(to=bob)",
            ),
        ),
        world_diff={"tickets": {"T-1": {"status": ["open", "resolved"]}}, "n": 1.5},
        latency_ms=1234.5678,
        cost_usd=0.000123456789,
        recorded_success=True,
    )  # fmt: skip


class ExperimentLogContract:
    """Every backend passes every test here."""

    def test_a_started_experiment_is_unfinished_and_found_by_its_spec_only(
        self, open_log: OpenLog
    ) -> None:
        with open_log() as log:
            first = log.start_experiment(spec(), label="nightly")
            other = log.start_experiment(spec(model="sim-small"))
            assert first.experiment_id != other.experiment_id
            assert first.experiment_id.startswith("exp-")
            assert first.finished_at is None
            assert log.experiment(first.experiment_id) == first
            assert log.unfinished_experiment(spec()) == first
            assert log.unfinished_experiment(spec(model="sim-small")) == other
            assert log.unfinished_experiment(spec(repeats=2)) is None
            assert log.unfinished_experiment(spec(mode="upgrade", baseline_model="x")) is None
            assert log.unfinished_experiment(spec(code_version="other")) is None

    def test_the_latest_unfinished_experiment_is_resumed(self, open_log: OpenLog) -> None:
        with open_log() as log:
            log.start_experiment(spec())
            later = log.start_experiment(spec())
            assert log.unfinished_experiment(spec()) == later

    def test_a_finished_experiment_is_not_resumed(self, open_log: OpenLog) -> None:
        with open_log() as log:
            experiment = log.start_experiment(spec())
            log.finish_experiment(experiment.experiment_id)
            finished = log.experiment(experiment.experiment_id)
            assert finished.finished_at is not None
            assert finished.finished_at >= experiment.started_at
            assert log.unfinished_experiment(spec()) is None

    def test_results_come_back_equal_to_what_was_recorded(self, open_log: OpenLog) -> None:
        with open_log() as log:
            experiment_id = log.start_experiment(spec()).experiment_id
            runs = [
                rich("b-task", experiment_id),
                result("a-task", experiment_id=experiment_id, repetition=1),
                result("a-task", experiment_id=experiment_id, run_id="run_a0"),
                result("B-upper", experiment_id=experiment_id),
            ]
            log.record_runs(experiment_id, [(runs[0], run_events("run_b-task")), *(
                (r, []) for r in runs[1:])])  # fmt: skip
        with open_log() as log:  # read back by a new connection
            got = log.results(experiment_id)
            # by task (byte order, as DuckDB sorts) and repetition
            assert [(r.task_id, r.repetition) for r in got] == [
                ("B-upper", 0), ("a-task", 0), ("a-task", 1), ("b-task", 0)
            ]  # fmt: skip
            assert {(r.task_id, r.repetition): r for r in got} == {
                (r.task_id, r.repetition): r for r in runs
            }
            assert log.finished_runs(experiment_id) == {
                ("B-upper", 0), ("a-task", 0), ("a-task", 1), ("b-task", 0)
            }  # fmt: skip

    def test_errored_runs_are_not_finished_and_a_rerun_replaces_them(
        self, open_log: OpenLog
    ) -> None:
        with open_log() as log:
            experiment_id = log.start_experiment(spec()).experiment_id
            errored = result(
                "a", experiment_id=experiment_id, success=False, status="error", error="boom"
            )
            log.record_runs(
                experiment_id, [(errored, []), (result("b", experiment_id=experiment_id), [])]
            )
            assert log.finished_runs(experiment_id) == {("b", 0)}

            rerun = result("a", experiment_id=experiment_id, run_id="run_1")
            log.record_runs(experiment_id, [(rerun, run_events("run_1"))])
            assert log.finished_runs(experiment_id) == {("a", 0), ("b", 0)}
            assert [r for r in log.results(experiment_id) if r.task_id == "a"] == [rerun]

    def test_a_batch_for_another_experiment_or_with_a_run_twice_is_refused_whole(
        self, open_log: OpenLog
    ) -> None:
        with open_log() as log:
            experiment_id = log.start_experiment(spec()).experiment_id
            ok = result("a", experiment_id=experiment_id)
            with pytest.raises(ValueError, match="belongs to experiment"):
                log.record_runs(experiment_id, [(ok, []), (result("b", experiment_id="x"), [])])
            with pytest.raises(ValueError, match="twice"):
                log.record_runs(experiment_id, [(ok, []), (ok, [])])
            with pytest.raises(StoreError, match="no experiment"):
                log.record_runs("exp-missing", [(result("a", experiment_id="exp-missing"), [])])
            assert log.results(experiment_id) == []
            assert log.finished_runs(experiment_id) == set()

    def test_an_unknown_experiment_is_a_store_error(self, open_log: OpenLog) -> None:
        with open_log() as log, pytest.raises(StoreError, match="exp-missing"):
            log.experiment("exp-missing")

    def test_a_closed_log_refuses_calls(self, open_log: OpenLog) -> None:
        log = open_log()
        log.close()
        log.close()
        with pytest.raises(StoreClosed):
            log.start_experiment(spec())
