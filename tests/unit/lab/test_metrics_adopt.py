"""MetricsStore.adopt_experiment: an experiment recorded elsewhere, copied whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from agentlab.core.errors import StoreError
from agentlab.core.events import Event
from agentlab.lab.metrics import MetricsStore, open_metrics
from agentlab.lab.results import Experiment, RunResult
from tests.unit.report._runs import result, run_events, spec

ELSEWHERE = Experiment(
    experiment_id="exp-0123456789ab",
    spec=spec(repeats=2),
    started_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
    finished_at=datetime(2026, 3, 1, 13, tzinfo=UTC),
    label="scale-out",
)


@pytest.fixture
def metrics() -> Iterator[MetricsStore]:
    with open_metrics(":memory:") as store:
        yield store


def runs(count: int) -> list[tuple[RunResult, Sequence[Event]]]:
    made = ELSEWHERE.experiment_id
    return [
        (result(f"t{n}", experiment_id=made, run_id=f"run_{n}", repetition=n % 2),
         run_events(f"run_{n}"))
        for n in range(count)
    ]  # fmt: skip


def test_an_adopted_experiment_keeps_its_id_label_and_times_and_its_runs(
    metrics: MetricsStore,
) -> None:
    recorded = runs(5)
    assert metrics.adopt_experiment(ELSEWHERE, iter(recorded), batch_size=2) == 5
    assert metrics.experiment(ELSEWHERE.experiment_id) == ELSEWHERE
    assert metrics.results(ELSEWHERE.experiment_id) == [r for r, _ in recorded]
    assert list(metrics.kpis()["runs"]) == [5]
    assert len(metrics.events("run_4", ELSEWHERE.experiment_id)) == len(recorded[4][1])
    assert metrics.finished_runs(ELSEWHERE.experiment_id) == {(r.task_id, r.repetition)
                                                              for r, _ in recorded}  # fmt: skip


def test_an_id_the_store_holds_is_refused_and_nothing_changes(metrics: MetricsStore) -> None:
    metrics.adopt_experiment(ELSEWHERE, runs(2))
    with pytest.raises(StoreError, match="already holds"):
        metrics.adopt_experiment(ELSEWHERE, runs(3))
    assert len(metrics.results(ELSEWHERE.experiment_id)) == 2


def test_a_copy_that_fails_half_way_leaves_nothing(metrics: MetricsStore) -> None:
    def broken() -> Iterator[tuple[RunResult, Sequence[Event]]]:
        yield from runs(3)
        raise ConnectionError("the other store went away")

    with pytest.raises(ConnectionError):
        metrics.adopt_experiment(ELSEWHERE, broken(), batch_size=2)
    with pytest.raises(ValueError, match="twice"):
        metrics.adopt_experiment(ELSEWHERE, runs(3) + runs(1), batch_size=2)
    assert metrics.experiments().empty
    assert metrics.sql("SELECT count(*) AS n FROM events")["n"].iloc[0] == 0
