"""The lab's runner end to end: record a small suite with the in-process simulator and world,
then replay it, upgrade against it, break it, and resume it.

One module-scoped recording (the fixture suite under all three configurations, sim-large)
serves every test; a test that changes cassettes or the suite works on a copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from agentlab.core.errors import ConfigError
from agentlab.lab.cassettes import load_cassette
from agentlab.lab.metrics import MetricsStore, open_metrics
from agentlab.lab.results import RunResult
from agentlab.lab.runner import SIMULATOR_NOTE, SuiteRun, cassette_path, run_suite
from agentlab.lab.suite import Suite, load_suite

MINI = Path(__file__).parents[1] / "fixtures" / "suites" / "mini" / "suite.yaml"
CONFIGS = ("chat_rag", "single", "multi")
TASKS = ("po-toner", "stock-staples", "mail-buyer", "close-monitor", "phase2-po-preview")
EDIT_MAIL = """  rules:
    - tool: send_email
      args: {to: [buyer@example.co.jp]}
      decision: edit
      edit: {subject: Toner order update}
"""
"""A reviewer rule that rewrites the mail's subject: the agent now sends another mail."""


@dataclass(frozen=True)
class Recording:
    """The fixture suite recorded under each configuration with sim-large."""

    root: Path
    cassettes: Path
    metrics: Path
    runs: dict[str, SuiteRun]

    def copy_cassettes(self, to: Path) -> Path:
        shutil.copytree(self.cassettes, to)
        return to

    def result(self, config: str, task_id: str) -> RunResult:
        return next(r for r in self.runs[config].results if r.task_id == task_id)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    root = tmp_path_factory.mktemp("lab")
    cassettes = root / "cassettes"
    metrics = root / "lab.duckdb"
    runs = {}
    with open_metrics(metrics) as store:
        for config in CONFIGS:
            runs[config] = run_suite(
                MINI, config=config, model="sim-large", mode="record", cassettes=cassettes,
                metrics=store,
            )  # fmt: skip
    return Recording(root, cassettes, metrics, runs)


@pytest.fixture
def metrics(tmp_path: Path) -> Iterator[MetricsStore]:
    with open_metrics(tmp_path / "lab.duckdb") as store:
        yield store


def suite_with(tmp_path: Path, old: str, new: str) -> Suite:
    """The fixture suite, named the same, with one edit."""
    text = MINI.read_text(encoding="utf-8")
    assert old in text
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "suite.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    return load_suite(folder)


def comparable(result: RunResult) -> dict[str, Any]:
    """A result without what names its experiment and mode."""
    return result.model_dump(exclude={"experiment_id", "mode", "recorded_success"})


def events_of(store: MetricsStore, experiment_id: str) -> list[dict[str, Any]]:
    frame = store.sql(
        'SELECT task_id, repetition, run_id, seq, kind, "at", payload FROM events '
        "WHERE experiment_id = ? ORDER BY task_id, repetition, seq",
        [experiment_id],
    )
    return frame.to_dict("records")


def committed_writes_in_events(store: MetricsStore, experiment_id: str, task_id: str) -> int:
    found = store.sql(
        "SELECT count(*) AS n FROM events WHERE experiment_id = ? AND task_id = ? "
        "AND kind = 'step_committed' AND payload::JSON->>'step_id' IN "
        "(SELECT step_id FROM steps WHERE experiment_id = ? AND task_id = ? "
        "AND side_effect = 'write')",
        [experiment_id, task_id] * 2,
    )
    return int(found["n"][0])


def check(result: RunResult, name: str) -> Any:
    return next(c for c in result.checks if c.name == name)


# --- record -----------------------------------------------------------------------------------


def test_record_writes_one_labelled_cassette_per_run(recording: Recording) -> None:
    for config in CONFIGS:
        for result in recording.runs[config].results:
            path = cassette_path(recording.cassettes, "mini", config, "sim-large", result.task_id)
            assert (
                path
                == recording.cassettes / "mini" / config / "sim-large" / f"{result.task_id}.yaml"
            )
            cassette = load_cassette(path)
            assert cassette.meta is not None
            assert (cassette.meta.suite, cassette.meta.task_id) == ("mini", result.task_id)
            assert (cassette.meta.config, cassette.meta.model) == (config, "sim-large")
            assert cassette.meta.is_simulated
            assert cassette.meta.note == SIMULATOR_NOTE
            assert cassette.meta.outcome["success"] == result.success
            targets = {i.target for i in cassette.interactions}
            assert "model" in targets
            assert "world" in targets  # the final diff the graders read
            assert "authorization:" not in path.read_text(encoding="utf-8").lower()


def test_the_recorded_single_agent_does_the_fixture_tasks(recording: Recording) -> None:
    results = {r.task_id: r for r in recording.runs["single"].results}
    assert list(results) == list(TASKS)
    failed = {
        t: [(c.name, c.detail) for c in r.failed_checks]
        for t, r in results.items()
        if not r.success
    }
    assert failed == {}
    po = results["po-toner"]
    assert [s.tool for s in po.side_effects] == ["create_purchase_order"]
    assert po.world_diff["erp.purchase_orders"]["added"][0]["supplier_id"] == "SUP-000103"
    assert po.external_calls >= 1
    assert po.latency_ms > 0
    assert po.cost_usd > 0
    assert results["mail-buyer"].reviews == 1  # send_email needs a person: the scripted one
    assert results["mail-buyer"].rework is False


def test_a_phase_2_task_previews_and_commits_nothing(recording: Recording) -> None:
    with open_metrics(recording.metrics) as store:
        for config in ("single", "multi"):
            result = recording.result(config, "phase2-po-preview")
            assert result.side_effects == ()
            assert result.world_diff == {}
            assert result.external_calls == 0
            assert result.dry_runs >= 1
            steps = store.steps(result.experiment_id)
            steps = steps[steps["task_id"] == "phase2-po-preview"]
            writes = steps[steps["side_effect"] == "write"]
            assert len(writes) >= 1
            assert set(writes["status"]) == {"dry_run"}
            assert writes["is_preview_only"].all()
            assert committed_writes_in_events(store, result.experiment_id, "phase2-po-preview") == 0
            assert committed_writes_in_events(store, result.experiment_id, "po-toner") == 1


# --- replay -----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
def test_replay_gives_the_recorded_results_and_events(recording: Recording, config: str) -> None:
    with open_metrics(recording.metrics) as store:
        replay = run_suite(
            MINI, config=config, model="sim-large", mode="replay", cassettes=recording.cassettes,
            metrics=store, resume=False,
        )  # fmt: skip
        recorded = recording.runs[config]
        assert [comparable(r) for r in replay.results] == [comparable(r) for r in recorded.results]
        assert [r.recorded_success for r in replay.results] == [r.success for r in recorded.results]
        assert all(r.divergences == () for r in replay.results)
        assert [comparable(r) for r in replay.recorded] == [comparable(r) for r in recorded.results]
        replayed_events = events_of(store, replay.experiment.experiment_id)
        recorded_events = events_of(store, recorded.experiment.experiment_id)
    assert {e["task_id"] for e in replayed_events} == set(TASKS)
    assert replayed_events == recorded_events


def test_two_replays_are_identical(recording: Recording, metrics: MetricsStore) -> None:
    options: dict[str, Any] = {"config": "multi", "model": "sim-large", "mode": "replay"}
    first, second = (
        run_suite(MINI, cassettes=recording.cassettes, metrics=metrics, resume=False, **options)
        for _ in range(2)
    )
    ids = [first.experiment.experiment_id, second.experiment.experiment_id]
    assert ids[0] != ids[1]
    assert [comparable(r) for r in first.results] == [comparable(r) for r in second.results]
    assert events_of(metrics, ids[0]) == events_of(metrics, ids[1])
    kpis = metrics.kpis(ids).drop(columns=["experiment_id", "started_at", "finished_at"])
    # NaN where a measure has no runs (no multi-turn tasks here): equal when both are NaN
    pd.testing.assert_series_equal(kpis.iloc[0], kpis.iloc[1], check_names=False)


def test_a_missing_cassette_fails_that_run_only(recording: Recording, tmp_path: Path) -> None:
    cassettes = recording.copy_cassettes(tmp_path / "cassettes")
    missing = cassette_path(cassettes, "mini", "single", "sim-large", "stock-staples")
    missing.unlink()
    replay = run_suite(MINI, config="single", model="sim-large", cassettes=cassettes)
    results = {r.task_id: r for r in replay.results}
    broken = results.pop("stock-staples")
    assert broken.status == "error"
    assert not broken.success
    assert broken.failure_cause == "cassette"
    assert str(missing) in (broken.error or "")
    assert all(r.success for r in results.values()), [r.failed_checks for r in results.values()]


def test_a_cassette_edited_into_nonsense_fails_that_run_and_keeps_earlier_experiments(
    recording: Recording, tmp_path: Path
) -> None:
    cassettes = recording.copy_cassettes(tmp_path / "cassettes")
    path = cassette_path(cassettes, "mini", "single", "sim-large", "po-toner")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["interactions"][0]["response"]["status"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    metrics_file = tmp_path / "lab.duckdb"
    shutil.copy(recording.metrics, metrics_file)
    with open_metrics(metrics_file) as store:
        earlier_ids = [r.experiment.experiment_id for r in recording.runs.values()]
        before = store.runs(earlier_ids).to_dict("records")
        experiments = len(store.experiments())
        replay = run_suite(
            MINI, config="single", model="sim-large", cassettes=cassettes, metrics=store
        )
        broken = next(r for r in replay.results if r.task_id == "po-toner")
        assert broken.failure_cause == "cassette"
        assert f"{path}: interaction 0: response.status" in (broken.error or "")
        assert sum(r.success for r in replay.results) == len(TASKS) - 1
        assert len(store.experiments()) == experiments + 1
        assert store.runs(earlier_ids).to_dict("records") == before
        assert store.experiment(replay.experiment.experiment_id).finished_at is not None


def test_a_cassette_whose_recorded_outcome_is_nonsense_fails_that_run_only(
    recording: Recording, tmp_path: Path
) -> None:
    cassettes = recording.copy_cassettes(tmp_path / "cassettes")
    path = cassette_path(cassettes, "mini", "single", "sim-large", "po-toner")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["metadata"]["agentlab"]["outcome"]["latency_ms"] = "fast"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    replay = run_suite(MINI, config="single", model="sim-large", cassettes=cassettes)
    results = {r.task_id: r for r in replay.results}
    edited = results.pop("po-toner")
    assert edited.failure_cause == "cassette"
    assert "metadata.agentlab.outcome" in (edited.error or "")
    assert all(r.success for r in results.values())


def test_a_broken_world_fixture_leaves_no_experiment_behind(
    tmp_path: Path, metrics: MetricsStore
) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "world.yaml").write_text("erp: [not, a, mapping]\n", encoding="utf-8")
    text = MINI.read_text(encoding="utf-8").replace("\nworld: default\n", "\nworld: world.yaml\n")
    (folder / "suite.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"world\.yaml"):
        run_suite(folder, config="single", model="sim-large", mode="record", metrics=metrics,
                  cassettes=tmp_path / "cassettes")  # fmt: skip
    assert metrics.experiments().empty


def test_a_cassette_with_a_status_code_edited_into_text_does_not_stop_the_suite(
    recording: Recording, tmp_path: Path
) -> None:
    cassettes = recording.copy_cassettes(tmp_path / "cassettes")
    path = cassette_path(cassettes, "mini", "single", "sim-large", "po-toner")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["interactions"][0]["response"]["status"]["code"] = "200"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    replay = run_suite(MINI, config="single", model="sim-large", cassettes=cassettes)
    results = {r.task_id: r for r in replay.results}
    edited = results.pop("po-toner")
    assert edited.success or edited.failure_cause == "cassette"
    assert all(r.success for r in results.values())


def test_a_reviewer_that_now_edits_the_mail_makes_replay_fail_naming_it(
    recording: Recording, tmp_path: Path
) -> None:
    suite = suite_with(tmp_path, "  rules:\n", EDIT_MAIL)
    replay = run_suite(
        suite, config="single", model="sim-large", cassettes=recording.cassettes,
        tasks=["mail-buyer"],
    )  # fmt: skip
    (result,) = replay.results
    assert not result.success
    assert result.recorded_success is True
    replayed = check(result, "replay")
    assert not replayed.passed
    assert replayed.detail.startswith("unrecorded side effect: POST /mail/send ")
    assert "Toner order update" in replayed.detail
    assert result.side_effects == ()  # the changed mail was never sent
    first = result.divergences[0]
    assert (first.kind, first.target, first.is_write) == ("unrecorded", "tool", True)


def test_a_changed_task_makes_replay_fail_naming_the_model_request(
    recording: Recording, tmp_path: Path
) -> None:
    suite = suite_with(
        tmp_path, "Order 16 TONER-BK-05 from SUP-000103.", "Order 17 TONER-BK-05 from SUP-000103."
    )
    replay = run_suite(
        suite, config="single", model="sim-large", cassettes=recording.cassettes,
        tasks=["po-toner"],
    )  # fmt: skip
    (result,) = replay.results
    assert not result.success
    assert result.side_effects == ()
    replayed = check(result, "replay")
    assert not replayed.passed
    assert "messages[1].content: Order 17 TONER-BK-05" in replayed.detail
    assert "(recorded Order 16 TONER-BK-05" in replayed.detail
    assert replayed.detail.startswith("unrecorded model request: POST /v1/chat/completions ")


# --- upgrade ----------------------------------------------------------------------------------


def test_upgrade_with_the_baseline_model_matches_its_recording(recording: Recording) -> None:
    upgrade = run_suite(
        MINI, config="single", model="sim-large", mode="upgrade", cassettes=recording.cassettes
    )
    assert upgrade.experiment.spec.baseline_model == "sim-large"
    recorded = recording.runs["single"].results
    assert [r.divergences for r in upgrade.results] == [()] * len(TASKS)
    assert [(r.success, r.side_effects, r.world_diff) for r in upgrade.results] == [
        (r.success, r.side_effects, r.world_diff) for r in recorded
    ]


def test_upgrade_does_not_send_a_write_the_baseline_lacks(
    recording: Recording, tmp_path: Path
) -> None:
    suite = suite_with(tmp_path, "  rules:\n", EDIT_MAIL)
    upgrade = run_suite(
        suite, config="single", model="sim-large", mode="upgrade",
        cassettes=recording.cassettes, tasks=["mail-buyer"],
    )  # fmt: skip
    (result,) = upgrade.results
    baseline = recording.result("single", "mail-buyer")
    sent = [d for d in result.divergences if d.kind == "unrecorded" and d.is_write]
    assert [(d.target, d.method, d.path) for d in sent] == [("tool", "POST", "/mail/send")]
    assert "Toner order update" in sent[0].summary
    never = [d for d in result.divergences if d.kind == "unused" and d.is_write]
    assert [d.path for d in never] == ["/mail/send"]  # the baseline's mail, not made this time
    assert result.side_effects == ()
    # The world is the baseline's recording: the edited mail is not in it.
    assert result.world_diff == baseline.world_diff
    assert result.world_diff["mail.outbox"]["added"][0]["subject"] != "Toner order update"
    assert check(result, "replay").detail.startswith("unrecorded side effect: POST /mail/send")
    assert "final world state is not known" in check(result, "world").detail
    # The mail that was never sent is neither an external call nor a tool failure.
    assert result.tool_failures == 0


def test_upgrade_to_sim_small_reports_where_its_calls_differ(recording: Recording) -> None:
    upgrade = run_suite(
        MINI, config="single", model="sim-small", mode="upgrade", baseline_model="sim-large",
        cassettes=recording.cassettes,
    )  # fmt: skip
    assert upgrade.experiment.spec.baseline_model == "sim-large"
    differing = []
    for result, baseline in zip(upgrade.results, recording.runs["single"].results, strict=True):
        assert result.model == "sim-small"
        assert result.world_diff == baseline.world_diff  # only ever the recording's world
        assert result.recorded_success == baseline.success
        if result.side_effects != baseline.side_effects:
            differing.append(result.task_id)
            assert any(d.target == "tool" and d.is_write for d in result.divergences), result
            assert not result.success
    assert differing, "sim-small should differ from sim-large somewhere in the fixture suite"


# --- resume -----------------------------------------------------------------------------------


class Interrupted(Exception):
    """Stands in for the process being stopped."""


def test_an_interrupted_suite_resumes_without_repeating_runs(
    recording: Recording, metrics: MetricsStore
) -> None:
    options: dict[str, Any] = {
        "config": "single", "model": "sim-large", "cassettes": recording.cassettes,
        "metrics": metrics, "concurrency": 1,
    }  # fmt: skip

    def stop_after_two(result: RunResult, done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_suite(MINI, on_result=stop_after_two, **options)
    (experiment_id,) = metrics.experiments()["experiment_id"]
    kept = metrics.finished_runs(experiment_id)
    assert len(kept) == 2
    assert metrics.experiment(experiment_id).finished_at is None

    told: list[tuple[str, int, int]] = []
    resumed = run_suite(
        MINI, on_result=lambda r, done, total: told.append((r.task_id, done, total)), **options
    )
    assert resumed.experiment.experiment_id == experiment_id
    assert {t for t, _, _ in told} == {t for t in TASKS} - {t for t, _ in kept}
    assert [(done, total) for _, done, total in told] == [(3, 5), (4, 5), (5, 5)]
    assert [r.task_id for r in resumed.results] == list(TASKS)
    assert all(r.success for r in resumed.results)
    assert len(metrics.experiments()) == 1
    assert metrics.experiment(experiment_id).finished_at is not None
    assert len(metrics.runs(experiment_id)) == len(TASKS)
    runs = metrics.sql(
        "SELECT task_id, count(DISTINCT run_id) AS n FROM events WHERE experiment_id = ? "
        "GROUP BY task_id",
        [experiment_id],
    )
    assert set(runs["n"]) == {1}

    again = run_suite(MINI, **options)  # the experiment finished: a new one starts
    assert again.experiment.experiment_id != experiment_id
    assert len(metrics.experiments()) == 2


def test_without_resume_an_unfinished_experiment_is_left_and_a_new_one_starts(
    recording: Recording, metrics: MetricsStore
) -> None:
    options: dict[str, Any] = {
        "config": "single", "model": "sim-large", "cassettes": recording.cassettes,
        "metrics": metrics, "concurrency": 1, "tasks": ["po-toner", "stock-staples"],
    }  # fmt: skip

    def stop(result: RunResult, done: int, total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        run_suite(MINI, on_result=stop, **options)
    fresh = run_suite(MINI, resume=False, **options)
    assert len(fresh.results) == 2
    experiments = metrics.experiments()
    assert len(experiments) == 2
    assert experiments["finished_at"].isna().sum() == 1


# --- the scripted reviewer --------------------------------------------------------------------


def test_a_reviewers_edit_is_rework_and_the_edited_mail_is_the_side_effect(
    tmp_path: Path,
) -> None:
    suite = suite_with(tmp_path, "  rules:\n", EDIT_MAIL)
    run = run_suite(
        suite, config="single", model="sim-large", mode="record",
        cassettes=tmp_path / "cassettes", tasks=["mail-buyer"],
    )  # fmt: skip
    (result,) = run.results
    assert result.reviews == 1
    assert result.rework is True
    (sent,) = result.world_diff["mail.outbox"]["added"]
    assert sent["subject"] == "Toner order update"
    (effect,) = result.side_effects
    assert effect.arguments["subject"] == sent["subject"]


def test_a_reviewers_rejection_is_rework_and_nothing_is_sent(tmp_path: Path) -> None:
    suite = suite_with(tmp_path, "  default: approve", "  default: reject")
    run = run_suite(
        suite, config="single", model="sim-large", mode="record",
        cassettes=tmp_path / "cassettes", tasks=["mail-buyer"],
    )  # fmt: skip
    (result,) = run.results
    assert result.reviews == 1
    assert result.rework is True
    assert result.side_effects == ()
    assert "mail.outbox" not in result.world_diff
    assert not result.success
    assert result.failure_cause in ("status", "side_effects")
