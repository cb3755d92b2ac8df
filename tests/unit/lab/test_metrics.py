"""The metrics store: KPIs from hand-built runs whose answers are known, resume, bad files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from agentlab.core.clock import TickingClock
from agentlab.core.errors import ConfigError, InvalidEvent, SchemaTooNew, StoreClosed, StoreError
from agentlab.lab.metrics import RUN_COLUMNS, MetricsStore, open_metrics
from agentlab.lab.metrics import store as metrics_store
from agentlab.lab.results import CheckResult, Divergence, RunResult
from tests.unit.report._runs import mail, result, run_events, spec


@pytest.fixture
def metrics() -> Iterator[MetricsStore]:
    with open_metrics(":memory:", clock=TickingClock(tick=timedelta(hours=1))) as store:
        yield store


def four_runs(experiment_id: str) -> list[RunResult]:
    """Two passes, a failure with rework, blocks and a forbidden effect, and an errored run."""
    return [
        result("a", experiment_id=experiment_id, latency_ms=1000, cost_usd=0.01, tool_calls=2,
               external_calls=2, dry_runs=1),
        result("b", experiment_id=experiment_id, success=False, rework=True, latency_ms=2000,
               cost_usd=0.03, tool_calls=4, tool_failures=1, external_calls=3, blocked_calls=2,
               forbidden_effects=1),
        result("c", experiment_id=experiment_id, latency_ms=4000, cost_usd=0.02, tool_calls=0,
               external_calls=0),
        result("d", experiment_id=experiment_id, success=False, status="error", latency_ms=0,
               cost_usd=0.0, tool_calls=0, external_calls=0, error="cassette unreadable"),
    ]  # fmt: skip


def test_kpis_follow_design_definitions(metrics: MetricsStore) -> None:
    experiment = metrics.start_experiment(spec())
    for run in four_runs(experiment.experiment_id):
        metrics.record_run(experiment.experiment_id, run, [])

    row = metrics.kpis(experiment.experiment_id).iloc[0]

    assert row["runs"] == 4
    assert row["errored_runs"] == 1
    assert row["success_rate"] == pytest.approx(0.5)
    assert row["rework_rate"] == pytest.approx(0.25)
    assert row["external_calls"] == pytest.approx((2 + 3 + 0 + 0) / 4)
    assert row["dry_runs"] == pytest.approx(0.25)
    assert row["blocked_calls"] == pytest.approx(0.5)
    assert row["cost_per_run"] == pytest.approx(0.06 / 4)
    assert row["tool_failure_rate"] == pytest.approx(1 / 6)
    assert row["policy_blocks"] == 2
    assert row["forbidden_effects"] == 1
    assert row["safety_violations"] == 3
    assert row["avg_tool_calls"] == pytest.approx(6 / 4)
    # the errored run has no wall time: the quantiles are over a, b and c
    assert row["p50_latency_ms"] == pytest.approx(2000)
    assert row["p95_latency_ms"] == pytest.approx(np.quantile([1000, 2000, 4000], 0.95))


def test_latency_quantiles_agree_with_numpy(metrics: MetricsStore) -> None:
    latencies = np.random.default_rng(7).lognormal(8, 0.6, size=101)
    experiment = metrics.start_experiment(spec())
    for i, latency in enumerate(latencies):
        run = result(f"t{i:03}", experiment_id=experiment.experiment_id, latency_ms=latency)
        metrics.record_run(experiment.experiment_id, run, [])

    row = metrics.kpis().iloc[0]

    assert row["p50_latency_ms"] == pytest.approx(np.quantile(latencies, 0.5))
    assert row["p95_latency_ms"] == pytest.approx(np.quantile(latencies, 0.95))


def test_no_tool_calls_means_no_tool_failures_not_a_division_by_zero(
    metrics: MetricsStore,
) -> None:
    experiment = metrics.start_experiment(spec("chat_rag"))
    run = result("a", experiment_id=experiment.experiment_id, tool_calls=0, external_calls=0)
    metrics.record_run(experiment.experiment_id, run, [])

    assert metrics.kpis().iloc[0]["tool_failure_rate"] == 0.0


def test_kpis_are_per_experiment(metrics: MetricsStore) -> None:
    first = metrics.start_experiment(spec("single"), label="nightly")
    second = metrics.start_experiment(spec("multi"), label="notebook")
    metrics.record_run(first.experiment_id, result("a", experiment_id=first.experiment_id), [])
    for task, ok in (("a", True), ("b", False)):
        run = result(task, experiment_id=second.experiment_id, config="multi", success=ok)
        metrics.record_run(second.experiment_id, run, [])

    kpis = metrics.kpis()

    assert list(kpis["experiment_id"]) == [first.experiment_id, second.experiment_id]
    assert list(kpis["success_rate"]) == [1.0, 0.5]
    assert list(metrics.kpis(label="nightly")["config"]) == ["single"]
    both = [first.experiment_id, second.experiment_id]
    assert list(metrics.kpis(both, label="notebook")["config"]) == ["multi"]
    assert metrics.kpis([]).empty
    assert list(metrics.experiments(label="notebook")["experiment_id"]) == [second.experiment_id]
    assert metrics.experiments(suite="other").empty


def test_steps_events_and_artifacts_come_from_the_runs_events(metrics: MetricsStore) -> None:
    experiment = metrics.start_experiment(spec())
    events = run_events("run_1")
    run = result("a", experiment_id=experiment.experiment_id, run_id="run_1")
    metrics.record_run(experiment.experiment_id, run, events)

    steps = metrics.steps(experiment.experiment_id)
    assert list(steps["tool"]) == ["search_kb", "send_mail", "send_mail", "find_ticket"]
    assert list(steps["status"]) == ["committed", "committed", "rejected", "failed"]
    assert list(steps["side_effect"]) == ["read", "write", "write", "read"]
    write, blocked, failed = steps.iloc[1], steps.iloc[2], steps.iloc[3]
    assert (write["approved_by"], write["approver"], write["reworked"]) == ("human", "carol", True)
    assert write["has_dry_run"]
    assert write["latency_ms"] == 30.0
    assert (blocked["rejected_by"], blocked["approver"]) == ("policy", "mail_allowlist")
    assert failed["error_code"] == "not_found"

    stored = metrics.events("run_1", experiment.experiment_id)
    assert list(stored["seq"]) == list(range(len(events)))
    assert list(stored["kind"]) == [e.kind for e in events]
    assert json.loads(stored["payload"].iloc[-1])["answer"] == "done"
    assert stored["at"].iloc[1] == pd.Timestamp(events[1].at)

    artifacts = metrics.artifacts(experiment.experiment_id)
    assert list(artifacts["artifact_id"]) == ["run_1-a0"]
    assert artifacts["kind"].iloc[0] == "answer"


def test_recording_a_run_again_replaces_it(metrics: MetricsStore) -> None:
    experiment = metrics.start_experiment(spec())
    eid = experiment.experiment_id
    metrics.record_run(eid, result("a", experiment_id=eid, run_id="run_1"), run_events("run_1"))
    again = result("a", experiment_id=eid, run_id="run_2", success=False, cost_usd=0.5)
    metrics.record_run(eid, again, run_events("run_2"))

    runs = metrics.runs(eid)
    assert len(runs) == 1
    assert (runs["run_id"].iloc[0], runs["cost_usd"].iloc[0]) == ("run_2", 0.5)
    assert set(metrics.steps(eid)["run_id"]) == {"run_2"}
    assert len(metrics.events("run_2", eid)) == len(run_events("run_2"))
    assert metrics.events("run_1", eid).empty
    assert len(metrics.artifacts(eid)) == 1
    assert metrics.finished_runs(eid) == {("a", 0)}


def test_results_read_back_equal_to_what_was_recorded(metrics: MetricsStore) -> None:
    experiment = metrics.start_experiment(spec())
    eid = experiment.experiment_id
    recorded = [
        result(
            "a",
            experiment_id=eid,
            repetition=1,
            success=False,
            side_effects=[mail("bob@example.co.jp"), mail("eve@evil.example", "secrets")],
            divergences=[
                Divergence(
                    kind="unrecorded",
                    target="tool",
                    method="POST",
                    path="/mail/send",
                    is_write=True,
                    summary="send_mail(to='eve@evil.example')",
                )
            ],
            checks=[CheckResult(name="forbidden", passed=False, detail="mailed eve")],
            world_diff={"mail.outbox": {"added": [{"to": "eve@evil.example"}]}},
        ),
        result("a", experiment_id=eid, repetition=0),
        result("b", experiment_id=eid, status="error", success=False, error="no cassette"),
    ]
    for run in recorded:
        metrics.record_run(eid, run, [])

    assert metrics.results(eid) == sorted(recorded, key=lambda r: (r.task_id, r.repetition))
    # An errored run is not finished: a resumed suite runs it again.
    assert metrics.finished_runs(eid) == {("a", 0), ("a", 1)}


def test_runs_table_holds_every_run_result_field(metrics: MetricsStore) -> None:
    columns = metrics.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
    )["column_name"]

    assert set(columns) == set(RunResult.model_fields) == set(RUN_COLUMNS)


def test_a_field_added_to_run_result_later_gets_its_column_on_open(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    with open_metrics(path, clock=TickingClock()) as metrics:
        eid = metrics.start_experiment(spec()).experiment_id
        metrics.record_run(eid, result("a", experiment_id=eid, reviews=3), [])
    with duckdb.connect(str(path)) as conn:  # a file written before `reviews` existed
        conn.execute("ALTER TABLE runs DROP COLUMN reviews")

    with open_metrics(path) as metrics:
        (old,) = metrics.results(eid)
        metrics.record_run(eid, result("b", experiment_id=eid, reviews=2), [])
        assert old.reviews == 0  # the field's default, since the row predates the column
        assert [r.reviews for r in metrics.results(eid)] == [0, 2]


def test_a_failed_write_leaves_no_half_run_and_earlier_runs_intact(
    metrics: MetricsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    eid = metrics.start_experiment(spec()).experiment_id
    metrics.record_run(eid, result("a", experiment_id=eid, run_id="run_1"), run_events("run_1"))
    real_insert = metrics_store._insert

    def crash_on_events(conn: object, table: str, *args: object) -> None:
        if table == "events":
            raise RuntimeError("disk full")
        real_insert(conn, table, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(metrics_store, "_insert", crash_on_events)
    with pytest.raises(RuntimeError, match="disk full"):
        metrics.record_run(eid, result("b", experiment_id=eid, run_id="run_2"), run_events("run_2"))

    assert metrics.finished_runs(eid) == {("a", 0)}
    assert set(metrics.steps(eid)["task_id"]) == {"a"}


def test_events_that_do_not_tell_one_run_are_refused_before_anything_is_written(
    metrics: MetricsStore,
) -> None:
    eid = metrics.start_experiment(spec()).experiment_id
    events = run_events("run_1")

    with pytest.raises(InvalidEvent):
        metrics.record_run(eid, result("a", experiment_id=eid), events[1:])

    assert metrics.finished_runs(eid) == set()


def test_runs_go_to_existing_experiments_only(metrics: MetricsStore) -> None:
    with pytest.raises(StoreError, match="no experiment 'exp-nope'"):
        metrics.record_run("exp-nope", result("a", experiment_id="exp-nope"), [])
    eid = metrics.start_experiment(spec()).experiment_id
    with pytest.raises(ValueError, match="belongs to experiment 'exp-other'"):
        metrics.record_run(eid, result("a", experiment_id="exp-other"), [])


def test_an_interrupted_suite_resumes_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "lab.duckdb"
    the_spec = spec(repeats=2)
    with open_metrics(path, clock=TickingClock()) as metrics:
        first = metrics.start_experiment(the_spec, label="nightly")
        for rep in (0, 1):
            run = result("a", experiment_id=first.experiment_id, repetition=rep)
            metrics.record_run(first.experiment_id, run, [])
        # the process dies here: the experiment is never finished

    with open_metrics(path, clock=TickingClock()) as metrics:
        resumed = metrics.unfinished_experiment(the_spec)
        assert resumed == first
        assert metrics.unfinished_experiment(spec(repeats=2, code_version="0.2.0")) is None
        assert metrics.finished_runs(first.experiment_id) == {("a", 0), ("a", 1)}
        finished = metrics.finish_experiment(first.experiment_id)
        assert finished.finished_at is not None
        assert metrics.unfinished_experiment(the_spec) is None


def test_latest_finished_experiment_is_the_baseline(metrics: MetricsStore) -> None:
    old = metrics.start_experiment(spec(), label="nightly")
    metrics.finish_experiment(old.experiment_id)
    new = metrics.start_experiment(spec(), label="nightly")
    metrics.finish_experiment(new.experiment_id)
    metrics.start_experiment(spec())  # unfinished: never a baseline

    kwargs = {"suite": "helpdesk", "config": "single", "model": "sim-large"}
    assert metrics.latest_experiment(**kwargs) == metrics.experiment(new.experiment_id)
    assert metrics.latest_experiment(**kwargs, before=new.experiment_id) == metrics.experiment(
        old.experiment_id
    )
    assert metrics.latest_experiment(**kwargs, label="other") is None
    assert metrics.latest_experiment(suite="helpdesk", config="multi", model="sim-large") is None


def test_the_same_run_id_in_two_experiments_is_told_apart(metrics: MetricsStore) -> None:
    ids = [metrics.start_experiment(spec()).experiment_id for _ in range(2)]
    for eid in ids:
        run = result("a", experiment_id=eid, run_id="run_1")
        metrics.record_run(eid, run, run_events("run_1"))

    assert set(metrics.events("run_1")["experiment_id"]) == set(ids)
    assert set(metrics.events("run_1", ids[1])["experiment_id"]) == {ids[1]}


def test_a_file_that_is_not_a_duckdb_database_is_refused_and_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.duckdb"
    path.write_text("experiment,success\nexp-1,0.9\n")

    with pytest.raises(ConfigError, match="not a DuckDB database"), open_metrics(path):
        pass

    assert path.read_text() == "experiment,success\nexp-1,0.9\n"


def test_a_newer_schema_is_refused_and_nothing_recorded_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    with open_metrics(path, clock=TickingClock()) as metrics:
        eid = metrics.start_experiment(spec()).experiment_id
        metrics.record_run(eid, result("a", experiment_id=eid), [])
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE agentlab_meta SET value = '99' WHERE key = 'metrics_schema_version'")

    with pytest.raises(SchemaTooNew, match="metrics schema 99"), open_metrics(path):
        pass

    with duckdb.connect(str(path)) as conn:  # as an older agentlab left it
        conn.execute("UPDATE agentlab_meta SET value = '1' WHERE key = 'metrics_schema_version'")
    with open_metrics(path) as metrics:
        assert metrics.finished_runs(eid) == {("a", 0)}


def test_another_components_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    with duckdb.connect(str(path)) as conn:  # the event store's file has an `events` table
        conn.execute("CREATE TABLE events (run_id TEXT, seq INTEGER, body JSON)")
        conn.execute("INSERT INTO events VALUES ('run_1', 0, '{}')")

    with pytest.raises(ConfigError, match="holds tables events"), open_metrics(path):
        pass

    with duckdb.connect(str(path)) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_a_closed_store_says_so() -> None:
    with open_metrics(":memory:") as metrics:
        pass
    with pytest.raises(StoreClosed):
        metrics.kpis()


CONVERSATION_COLUMNS = ("is_multi_turn", "agent_turns", "questions_asked", "questions_needed",
                        "questions_unneeded", "acted_on_assumption", "push_attempts",
                        "pushes_obeyed", "ended_by")  # fmt: skip


def test_the_conversation_kpis_count_multi_turn_runs_and_pushes(metrics: MetricsStore) -> None:
    eid = metrics.start_experiment(spec()).experiment_id
    talk = {"is_multi_turn": True, "questions_asked": 2, "questions_needed": 1}
    runs = [
        result("a", experiment_id=eid, agent_turns=2, questions_unneeded=1, **talk),
        result("b", experiment_id=eid, success=False, agent_turns=4, acted_on_assumption=True,
               push_attempts=1, pushes_obeyed=1, forbidden_effects=1, ended_by="max_turns",
               **talk),
        result("c", experiment_id=eid, blocked_calls=2),  # a single-shot run
    ]  # fmt: skip
    for run in runs:
        metrics.record_run(eid, run, [])
    row = metrics.kpis(eid).iloc[0]
    assert row["multi_turn_runs"] == 2
    assert row["multi_turn_success_rate"] == pytest.approx(0.5)
    assert row["avg_agent_turns"] == pytest.approx(3.0)
    assert (row["questions_asked"], row["questions_needed"], row["questions_unneeded"]) == (4, 2, 1)
    assert row["assumption_rate"] == pytest.approx(0.5)
    assert row["turn_limit_runs"] == 1
    assert (row["push_attempts"], row["pushes_obeyed"]) == (1, 1)
    assert row["safety_violations"] == 3  # two policy blocks and one forbidden effect
    assert row["safety_events"] == 4  # and the push


def test_a_metrics_file_from_before_conversations_gets_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    with open_metrics(path, clock=TickingClock()) as metrics:
        eid = metrics.start_experiment(spec()).experiment_id
        metrics.record_run(eid, result("a", experiment_id=eid, blocked_calls=1), [])
    with duckdb.connect(str(path)) as conn:  # as written before multi-turn tasks existed
        conn.execute("DROP VIEW kpis")
        for column in CONVERSATION_COLUMNS:
            conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")

    with open_metrics(path) as metrics:
        (old,) = metrics.results(eid)
        assert (old.is_multi_turn, old.push_attempts, old.ended_by) == (False, 0, None)
        row = metrics.kpis(eid).iloc[0]
        assert (row["multi_turn_runs"], row["push_attempts"], row["safety_events"]) == (0, 0, 1)
        assert set(CONVERSATION_COLUMNS) <= set(metrics.runs(eid).columns)


def test_a_batch_of_runs_lands_whole(metrics: MetricsStore) -> None:
    eid = metrics.start_experiment(spec()).experiment_id
    metrics.record_run(eid, result("a", experiment_id=eid, run_id="run_1"), run_events("run_1"))
    batch = [
        (result("a", experiment_id=eid, run_id="run_2", cost_usd=0.5), run_events("run_2")),
        (result("b", experiment_id=eid, run_id="run_3"), run_events("run_3")),
    ]
    metrics.record_runs(eid, batch)

    runs = metrics.runs(eid).set_index("task_id")
    assert runs.loc["a", "run_id"] == "run_2"  # recorded again: replaced
    assert runs.loc["a", "cost_usd"] == 0.5
    assert set(metrics.steps(eid)["run_id"]) == {"run_2", "run_3"}
    assert metrics.finished_runs(eid) == {("a", 0), ("b", 0)}


def test_a_batch_with_a_bad_run_writes_none_of_it(metrics: MetricsStore) -> None:
    eid = metrics.start_experiment(spec()).experiment_id
    good = (result("a", experiment_id=eid, run_id="run_1"), run_events("run_1"))
    broken = (result("b", experiment_id=eid, run_id="run_2"), run_events("run_2")[1:])
    with pytest.raises(InvalidEvent):
        metrics.record_runs(eid, [good, broken])
    twice = (result("a", experiment_id=eid, run_id="run_3"), run_events("run_3"))
    with pytest.raises(ValueError, match="'a', repetition 0, is in the batch twice"):
        metrics.record_runs(eid, [good, twice])
    assert metrics.finished_runs(eid) == set()
    assert metrics.steps(eid).empty
