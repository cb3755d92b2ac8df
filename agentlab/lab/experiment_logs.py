"""Open the experiment log a suite records into, by URL: DuckDB here, PostgreSQL across machines.

A suite run on one machine records into the DuckDB metrics store; a suite spread over
workers records into PostgreSQL, which many processes can write at once (see
docs/postgres-experiments.md), and is copied into DuckDB for the reports with
:func:`agentlab.lab.metrics.copy_experiments`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agentlab.adapters import STORE_URL_FORMS
from agentlab.core.clock import Clock
from agentlab.core.errors import ConfigError
from agentlab.lab.metrics import MetricsStore, connect_metrics

if TYPE_CHECKING:  # psycopg is an optional extra: the class is imported when a URL needs it
    from agentlab.adapters.postgres_experiments import PostgresExperimentLog


def open_experiment_log(
    url: str | Path, *, recorded_by: str = "", clock: Clock | None = None
) -> MetricsStore | PostgresExperimentLog:
    """Open (or create) an experiment log for ``arun_suite(metrics=...)``; close it after.

    Args:
        url: ``postgresql://...`` (or ``postgres://``) for the PostgreSQL experiment log
            (needs the ``postgres`` extra); ``duckdb://`` and a file, or a plain path, for a
            :class:`~agentlab.lab.metrics.MetricsStore`.
        recorded_by: For PostgreSQL: the name stored with each run this process records
            (a worker's); DuckDB keeps no such column and ignores it.
        clock: Where experiments' and runs' times come from (the wall clock by default).

    Raises:
        ConfigError: another URL scheme.
        BackendError: the PostgreSQL server cannot be reached.
    """
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return connect_metrics(text, clock=clock)
    if scheme == "duckdb":
        if not rest:
            raise ConfigError(
                f"experiment log URL {text!r} names no file", hint="e.g. duckdb://lab.duckdb"
            )
        return connect_metrics(rest, clock=clock)
    if scheme in ("postgresql", "postgres"):
        from agentlab.adapters.postgres_experiments import PostgresExperimentLog  # noqa: PLC0415

        return PostgresExperimentLog(text, recorded_by=recorded_by, clock=clock)
    raise ConfigError(
        f"experiment log URL scheme {scheme!r} is not known",
        hint="use a file path, or one of: "
        + ", ".join(form for form in STORE_URL_FORMS if not form.startswith("memory")),
    )
