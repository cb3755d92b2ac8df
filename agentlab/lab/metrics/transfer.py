"""Experiments kept elsewhere, copied into the metrics store that reports and ``compare`` read.

Suites spread over machines record into the PostgreSQL experiment log
(:class:`agentlab.adapters.postgres_experiments.PostgresExperimentLog`); the KPIs, ``compare``
and the nightly report read DuckDB. :func:`copy_experiments` brings experiments over, a page
of runs at a time. It knows the source only by the few methods of :class:`ExperimentSource`,
so the metrics need no database driver but DuckDB's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from agentlab.core.events import Event
from agentlab.lab.metrics.store import MetricsStore
from agentlab.lab.results import Experiment, RunResult


class ExperimentSource(Protocol):
    """What :func:`copy_experiments` reads (``PostgresExperimentLog`` has it)."""

    def experiments(self, *, is_finished: bool | None = None) -> list[Experiment]:
        """Every experiment, oldest first; only finished (or unfinished) ones if told."""
        ...

    def experiment(self, experiment_id: str) -> Experiment:
        """One experiment by id; raises StoreError if there is none."""
        ...

    def iter_runs(
        self, experiment_id: str, *, batch_size: int = 256
    ) -> Iterator[tuple[RunResult, Sequence[Event]]]:
        """An experiment's runs with their events, read a page at a time."""
        ...


def copy_experiments(
    source: ExperimentSource,
    metrics: MetricsStore,
    experiment_ids: Iterable[str] | None = None,
    *,
    batch_size: int = 256,
) -> list[str]:
    """Copy experiments, with their runs and events, from ``source`` into ``metrics``.

    Each experiment is copied in one transaction of the metrics store
    (:meth:`MetricsStore.adopt_experiment`), keeping its id, label and times; an experiment
    that fails to copy leaves nothing behind, and the ones copied before it stay.

    Args:
        source: Where the experiments were recorded.
        metrics: The DuckDB metrics store to copy them into.
        experiment_ids: These experiments, finished or not; an id ``metrics`` holds already
            is an error. None copies every *finished* experiment ``metrics`` does not hold,
            so calling it again (after the nightly, say) copies only what is new.
        batch_size: Runs read from ``source`` per query.

    Returns:
        The ids copied, in the order they were copied.

    Raises:
        StoreError: an experiment named is not in ``source``, or ``metrics`` holds it already.
    """
    if experiment_ids is None:
        held = set(metrics.experiments()["experiment_id"])
        chosen = [e for e in source.experiments(is_finished=True) if e.experiment_id not in held]
    else:
        chosen = [source.experiment(experiment_id) for experiment_id in experiment_ids]
    copied = []
    for experiment in chosen:
        metrics.adopt_experiment(
            experiment,
            source.iter_runs(experiment.experiment_id, batch_size=batch_size),
            batch_size=batch_size,
        )
        copied.append(experiment.experiment_id)
    return copied
