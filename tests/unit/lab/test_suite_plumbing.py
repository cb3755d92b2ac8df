"""The runner's plumbing: batched writes that keep what they can, and a shared GC freeze."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agentlab.core.errors import InvalidEvent
from agentlab.lab import runner
from agentlab.lab.metrics import MetricsStore, open_metrics
from tests.unit.report._runs import result, run_events, spec


@pytest.fixture
def metrics() -> Iterator[MetricsStore]:
    with open_metrics(":memory:") as store:
        yield store


def test_a_batch_with_a_bad_run_keeps_the_good_ones_and_raises(metrics: MetricsStore) -> None:
    eid = metrics.start_experiment(spec()).experiment_id
    writer = runner._BatchWriter(metrics, eid)
    writer.add(result("a", experiment_id=eid, run_id="run_1"), run_events("run_1"))
    writer.add(result("b", experiment_id=eid, run_id="run_2"), run_events("run_2")[1:])
    writer.add(result("c", experiment_id=eid, run_id="run_3"), run_events("run_3"))
    with pytest.raises(InvalidEvent):
        writer.flush()
    assert metrics.finished_runs(eid) == {("a", 0), ("c", 0)}
    writer.flush()  # nothing is held any more: the bad run is not retried for ever


def test_a_full_batch_is_written_at_once(metrics: MetricsStore) -> None:
    eid = metrics.start_experiment(spec()).experiment_id
    writer = runner._BatchWriter(metrics, eid)
    for n in range(runner.WRITE_BATCH):
        writer.add(result(f"t{n}", experiment_id=eid), [])
        assert len(metrics.finished_runs(eid)) == (0 if n < runner.WRITE_BATCH - 1 else n + 1)


def test_suites_at_once_share_one_gc_freeze() -> None:
    assert gc.get_freeze_count() == 0
    with runner._old_objects_left_alone():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with runner._old_objects_left_alone():
            pass
        assert gc.get_freeze_count() == frozen  # the inner suite's end did not unfreeze
    assert gc.get_freeze_count() == 0


def test_a_freeze_the_process_made_itself_is_left_alone() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with runner._old_objects_left_alone():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
