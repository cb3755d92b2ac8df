"""The lab's metrics in one DuckDB file: experiments, runs, steps, events, artifacts, KPIs.

Every experiment (suite x config x model x mode x code version) is a row that later ones
are compared against. A run is written in one transaction with its steps, events and
artifacts, so an interrupted suite keeps every run it finished and resumes from there
(:meth:`MetricsStore.unfinished_experiment`, :meth:`MetricsStore.finished_runs`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import duckdb
import pandas as pd

from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import ConfigError, SchemaTooNew, StoreClosed, StoreError
from agentlab.core.events import ArtifactRecorded, Event
from agentlab.lab.metrics._schema import KPIS_VIEW, MIGRATIONS, SCHEMA_KEY, TABLES
from agentlab.lab.results import Experiment, ExperimentSpec, RunResult
from agentlab.store import project_run

DEFAULT_PATH = Path(".agentlab") / "lab.duckdb"
"""Where ``open_metrics`` keeps the metrics unless told otherwise (relative to the cwd)."""

RUN_COLUMNS: tuple[str, ...] = tuple(RunResult.model_fields)
"""The ``runs`` table's columns: every RunResult field, in the model's order."""
_SQL_TYPES: dict[Any, str] = {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", str: "TEXT"}


def _sql_type(annotation: Any) -> str:
    """The column type of a RunResult field: a scalar's own, JSON for the rest."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        annotation = args[0]
    if get_origin(annotation) is Literal:
        return "TEXT"
    return _SQL_TYPES.get(annotation, "JSON")


_RUN_TYPES = {name: _sql_type(f.annotation) for name, f in RunResult.model_fields.items()}
_JSON_RUN_COLUMNS = frozenset(name for name, kind in _RUN_TYPES.items() if kind == "JSON")
_STEP_COLUMNS = (
    "experiment_id", "task_id", "repetition", "run_id", "step_id", "position", "tool",
    "side_effect", "status", "attempts", "error_code", "approver", "approved_by", "rejected_by",
    "reworked", "has_dry_run", "is_preview_only", "latency_ms",
)  # fmt: skip
_EVENT_COLUMNS = (
    "experiment_id",
    "task_id",
    "repetition",
    "run_id",
    "seq",
    "kind",
    "at",
    "payload",
)
_ARTIFACT_COLUMNS = (
    "experiment_id", "task_id", "repetition", "run_id", "artifact_id", "step_id", "kind",
    "media_type", "uri", "at", "content_chars",
)  # fmt: skip
_RUN_TABLES: dict[str, tuple[str, ...]] = {
    "runs": RUN_COLUMNS,
    "steps": _STEP_COLUMNS,
    "events": _EVENT_COLUMNS,
    "artifacts": _ARTIFACT_COLUMNS,
}
"""The tables that hold a run's rows, and their columns."""


class MetricsStore:
    """Experiments and their graded runs in DuckDB, read back as DataFrames.

    Open one with :func:`open_metrics`. The methods are thread-safe (one connection behind a
    lock); DuckDB allows one writing process per file.

    Args:
        conn: An open DuckDB connection whose schema is up to date.
        url: For messages.
        clock: Gives ``started_at`` and ``finished_at``.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, *, url: str, clock: Clock) -> None:
        self.url = url
        self._conn: duckdb.DuckDBPyConnection | None = conn
        self._clock = clock
        self._lock = threading.RLock()

    # --- writing -------------------------------------------------------------------------

    def start_experiment(self, spec: ExperimentSpec, label: str = "") -> Experiment:
        """Add an experiment, unfinished, starting now.

        Args:
            spec: What identifies it (suite, config, model, mode, code version, ...).
            label: Free text to find it by: ``nightly``, a notebook's name.
        """
        started_at = self._clock.now()
        with self._transaction() as conn:
            (count,) = conn.execute("SELECT count(*) FROM experiments").fetchone() or (0,)
            digest = hashlib.sha256(
                f"{spec.model_dump_json()}|{started_at.isoformat()}|{count}".encode()
            ).hexdigest()
            experiment = Experiment(
                experiment_id=f"exp-{digest[:12]}", spec=spec, started_at=started_at, label=label
            )
            conn.execute(
                "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [
                    experiment.experiment_id,
                    spec.suite,
                    spec.config,
                    spec.model,
                    spec.mode,
                    spec.code_version,
                    spec.repeats,
                    spec.seed,
                    spec.baseline_model,
                    label,
                    started_at,
                ],
            )
        return experiment

    def record_run(self, experiment_id: str, result: RunResult, events: Sequence[Event]) -> None:
        """Write one graded run with its steps, events and artifacts, in one transaction.

        Recording the same (experiment, task, repetition) again replaces the earlier rows.

        Args:
            experiment_id: The experiment the run belongs to (``result.experiment_id`` too).
            result: The graded run.
            events: The run's events in seq order, as the event store returned them; empty
                when the run could not be carried out (``result.status == "error"``).

        Raises:
            ValueError: ``result`` belongs to another experiment.
            StoreError: no such experiment.
            InvalidEvent: the events do not tell one run's story.
        """
        self.record_runs(experiment_id, [(result, events)])

    def record_runs(
        self, experiment_id: str, runs: Sequence[tuple[RunResult, Sequence[Event]]]
    ) -> None:
        """Write several graded runs in one transaction, as :meth:`record_run` does one.

        A transaction costs a few milliseconds whatever it holds, more than a replayed run's
        rows take to insert, so the lab's runner writes its finished runs in batches. All of
        a batch lands, or none of it.

        Raises:
            ValueError: a result belongs to another experiment, or a run is in twice.
            StoreError: no such experiment.
            InvalidEvent: a run's events do not tell one run's story.
        """
        rows, keys = _batch_rows(experiment_id, runs)
        if not keys:
            return
        with self._transaction() as conn:
            if not conn.execute(
                "SELECT 1 FROM experiments WHERE experiment_id = ?", [experiment_id]
            ).fetchone():
                raise StoreError(
                    f"{self.url}: no experiment {experiment_id!r}",
                    hint="start it with start_experiment(spec) and record into its id",
                )
            recorded = conn.execute(
                "SELECT task_id, repetition FROM runs WHERE experiment_id = ?", [experiment_id]
            ).fetchall()
            # scanning the other tables costs, so only for runs there are to replace
            for task_id, repetition in keys.intersection(recorded):
                for table in _RUN_TABLES:
                    conn.execute(
                        f"DELETE FROM {table} WHERE experiment_id = ? AND task_id = ? "
                        "AND repetition = ?",
                        [experiment_id, task_id, repetition],
                    )
            for table, columns in _RUN_TABLES.items():
                _insert(conn, table, columns, rows[table])

    def adopt_experiment(
        self,
        experiment: Experiment,
        runs: Iterable[tuple[RunResult, Sequence[Event]]],
        *,
        batch_size: int = 256,
    ) -> int:
        """Copy in an experiment kept elsewhere (the PostgreSQL experiment log), with its runs.

        The experiment keeps its id, label and times, so ``compare``, ``kpis`` and the nightly
        report read it as if it had run here. ``runs`` is read ``batch_size`` at a time (it
        may be a stream from the other store), and all of it lands in one transaction, or
        none of it.

        Args:
            experiment: The experiment as the other store holds it.
            runs: Its graded runs with their events, each run once.
            batch_size: Runs turned into rows at a time.

        Returns:
            How many runs were copied.

        Raises:
            StoreError: this store holds an experiment with that id already (nothing is
                copied; copy an experiment once, or into another file).
            ValueError: a run belongs to another experiment, or is in ``runs`` twice.
        """
        experiment_id = experiment.experiment_id
        spec = experiment.spec
        seen: set[tuple[str, int]] = set()
        with self._transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM experiments WHERE experiment_id = ?", [experiment_id]
            ).fetchone():
                raise StoreError(
                    f"{self.url} already holds experiment {experiment_id!r}",
                    hint="an experiment is copied once; open another metrics file to copy it again",
                )
            conn.execute(
                "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    experiment_id, spec.suite, spec.config, spec.model, spec.mode,
                    spec.code_version, spec.repeats, spec.seed, spec.baseline_model,
                    experiment.label, experiment.started_at, experiment.finished_at,
                ],
            )  # fmt: skip
            pending = iter(runs)
            while batch := list(islice(pending, batch_size)):
                rows, keys = _batch_rows(experiment_id, batch)
                if twice := seen & keys:
                    task_id, repetition = min(twice)
                    raise ValueError(
                        f"task {task_id!r}, repetition {repetition}, is in the runs twice"
                    )
                seen |= keys
                for table, columns in _RUN_TABLES.items():
                    _insert(conn, table, columns, rows[table])
        return len(seen)

    def absorb(self, path: str | Path) -> None:
        """Copy every experiment and run of another metrics file into this one.

        Parallel replays write to a file per process and are absorbed when done; the copy
        is one transaction, by column name (an older file's migrated columns sit in another
        order). An experiment id this store already holds is an error, and nothing is copied.

        Raises:
            StoreError: the file cannot be read, or it holds an experiment this store has.
        """
        with self._locked() as conn:
            try:
                quoted = str(Path(path)).replace("'", "''")
                conn.execute(f"ATTACH '{quoted}' AS absorbed (READ_ONLY)")
            except duckdb.Error as exc:
                raise StoreError(f"{self.url}: cannot read {path}: {exc}") from None
            try:
                clash = conn.execute(
                    "SELECT experiment_id FROM absorbed.experiments "
                    "WHERE experiment_id IN (SELECT experiment_id FROM experiments)"
                ).fetchall()
                if clash:
                    raise StoreError(
                        f"{self.url} already holds experiment {clash[0][0]!r} of {path}",
                        hint="each parallel replay writes new experiments; absorb a file once",
                    )
                conn.begin()
                try:
                    for table in TABLES:
                        columns = ", ".join(
                            f'"{name}"'
                            for (name,) in conn.execute(
                                "SELECT column_name FROM information_schema.columns "
                                "WHERE table_catalog = 'absorbed' AND table_name = ? "
                                "ORDER BY ordinal_position",
                                [table],
                            ).fetchall()
                        )
                        conn.execute(
                            f"INSERT INTO {table} ({columns}) "
                            f"SELECT {columns} FROM absorbed.{table}"
                        )
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
            finally:
                conn.execute("DETACH absorbed")

    def finish_experiment(self, experiment_id: str) -> Experiment:
        """Mark an experiment finished now, and return it.

        Raises:
            StoreError: no such experiment.
        """
        with self._transaction() as conn:
            conn.execute(
                "UPDATE experiments SET finished_at = ? WHERE experiment_id = ?",
                [self._clock.now(), experiment_id],
            )
        return self.experiment(experiment_id)

    # --- finding experiments -------------------------------------------------------------

    def experiment(self, experiment_id: str) -> Experiment:
        """One experiment by id.

        Raises:
            StoreError: no such experiment.
        """
        found = self._experiments("WHERE experiment_id = ?", [experiment_id])
        if not found:
            raise StoreError(
                f"{self.url}: no experiment {experiment_id!r}",
                hint="list them with MetricsStore.experiments() or `agentlab runs`",
            )
        return found[0]

    def unfinished_experiment(self, spec: ExperimentSpec) -> Experiment | None:
        """The latest unfinished experiment with this very spec, to resume an interrupted suite."""
        found = self._experiments(
            "WHERE finished_at IS NULL AND " + _SPEC_MATCH + " ORDER BY started_at DESC LIMIT 1",
            _spec_params(spec),
        )
        return found[0] if found else None

    def latest_experiment(
        self,
        *,
        suite: str,
        config: str,
        model: str,
        mode: str | None = None,
        label: str | None = None,
        before: str | None = None,
    ) -> Experiment | None:
        """The latest finished experiment of a suite, config and model: a baseline to compare with.

        Args:
            suite: The suite's name.
            config: The agent configuration.
            model: The model.
            mode: Only experiments of this mode, if given.
            label: Only experiments with this label, if given.
            before: Only experiments started before this experiment (by id), if given.
        """
        where = ["finished_at IS NOT NULL", "suite = ?", "config = ?", "model = ?"]
        params: list[Any] = [suite, config, model]
        if mode is not None:
            where.append("mode = ?")
            params.append(mode)
        if label is not None:
            where.append("label = ?")
            params.append(label)
        if before is not None:
            where.append("started_at < ?")
            params.append(self.experiment(before).started_at)
        found = self._experiments(
            "WHERE " + " AND ".join(where) + " ORDER BY started_at DESC LIMIT 1", params
        )
        return found[0] if found else None

    def finished_runs(self, experiment_id: str) -> set[tuple[str, int]]:
        """The (task_id, repetition) pairs an experiment holds, runs that errored aside.

        A resumed suite runs the others again (an errored run is replaced, never duplicated).
        """
        with self._locked() as conn:
            rows = conn.execute(
                "SELECT task_id, repetition FROM runs WHERE experiment_id = ? "
                "AND status <> 'error'",
                [experiment_id],
            ).fetchall()
        return {(task_id, repetition) for task_id, repetition in rows}

    # --- reading -------------------------------------------------------------------------

    def experiments(self, suite: str | None = None, label: str | None = None) -> pd.DataFrame:
        """The experiments, oldest first, optionally of one suite and with one label."""
        where, params = _filters(suite=suite, label=label)
        return self._frame(
            f"SELECT * FROM experiments {where} ORDER BY started_at, experiment_id", params
        )

    def runs(self, experiment_ids: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The graded runs, one row each; JSON columns (``checks``, ...) are JSON text."""
        where, params = _filters(experiment_ids=experiment_ids)
        return self._frame(
            f"SELECT * FROM runs {where} ORDER BY experiment_id, task_id, repetition", params
        )

    def steps(self, experiment_ids: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The runs' tool steps, one row each, in run and position order."""
        where, params = _filters(experiment_ids=experiment_ids)
        return self._frame(
            f"SELECT * FROM steps {where} ORDER BY experiment_id, task_id, repetition, position",
            params,
        )

    def artifacts(self, experiment_ids: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The runs' artifacts (their metadata; the content is in the events' payloads)."""
        where, params = _filters(experiment_ids=experiment_ids)
        return self._frame(
            f'SELECT * FROM artifacts {where} ORDER BY experiment_id, task_id, repetition, "at"',
            params,
        )

    def events(self, run_id: str, experiment_id: str | None = None) -> pd.DataFrame:
        """One run's events in seq order; ``payload`` is the event as JSON.

        Replays reuse run ids, so give ``experiment_id`` to pick one experiment's run.
        """
        sql = "SELECT * FROM events WHERE run_id = ?"
        params: list[Any] = [run_id]
        if experiment_id is not None:
            sql += " AND experiment_id = ?"
            params.append(experiment_id)
        return self._frame(sql + " ORDER BY experiment_id, seq", params)

    def kpis(
        self,
        experiment_ids: str | Sequence[str] | None = None,
        *,
        suite: str | None = None,
        label: str | None = None,
    ) -> pd.DataFrame:
        """The article's measures, one row per experiment, oldest first (see docs/metrics.md).

        Args:
            experiment_ids: Only these experiments, if given.
            suite: Only experiments of this suite, if given.
            label: Only experiments with this label (``nightly``), if given.
        """
        where, params = _filters(experiment_ids=experiment_ids, suite=suite, label=label)
        return self._frame(f"SELECT * FROM kpis {where} ORDER BY started_at, experiment_id", params)

    def results(self, experiment_id: str) -> list[RunResult]:
        """An experiment's runs as RunResults, by task and repetition (for ``compare``)."""
        with self._locked() as conn:
            cursor = conn.execute(
                "SELECT * FROM runs WHERE experiment_id = ? ORDER BY task_id, repetition",
                [experiment_id],
            )
            names = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        results = []
        for row in rows:
            data = {
                name: value
                for name, value in zip(names, row, strict=True)
                # a field added to RunResult after this row was written: keep its default
                if name in RunResult.model_fields and value is not None
            }
            for name in _JSON_RUN_COLUMNS & data.keys():
                data[name] = json.loads(data[name])
            results.append(RunResult.model_validate(data))
        return results

    def sql(self, query: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Any read-only query over the tables and the ``kpis`` view, as a DataFrame."""
        return self._frame(query, list(params))

    # --- plumbing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _locked(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            if self._conn is None:
                raise StoreClosed(f"{self.url}: the metrics store is closed", hint="open it again")
            yield self._conn

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._locked() as conn:
            conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _experiments(self, where: str, params: list[Any]) -> list[Experiment]:
        with self._locked() as conn:
            rows = conn.execute(
                "SELECT experiment_id, suite, config, model, mode, code_version, repeats, seed, "
                f"baseline_model, label, started_at, finished_at FROM experiments {where}",
                params,
            ).fetchall()
        return [
            Experiment(
                experiment_id=row[0],
                spec=ExperimentSpec(
                    suite=row[1],
                    config=row[2],
                    model=row[3],
                    mode=row[4],
                    code_version=row[5],
                    repeats=row[6],
                    seed=row[7],
                    baseline_model=row[8],
                ),
                label=row[9],
                started_at=_utc(row[10]),
                finished_at=_utc(row[11]) if row[11] is not None else None,
            )
            for row in rows
        ]

    def _frame(self, sql: str, params: list[Any]) -> pd.DataFrame:
        with self._locked() as conn:
            # DuckDB's own TIMESTAMPTZ -> pandas path warns under pandas 3 (its DataFrame.drop
            # inplace=); naive UTC timestamps convert cleanly and get their zone back below.
            described = conn.execute(f"DESCRIBE {sql}", params).fetchall()
            zoned = [name for name, kind, *_ in described if kind == "TIMESTAMP WITH TIME ZONE"]
            if zoned:
                columns = ", ".join(
                    f'"{name}"::TIMESTAMP AS "{name}"' if name in zoned else f'"{name}"'
                    for name, *_ in described
                )
                sql = f"SELECT {columns} FROM ({sql})"
            frame = conn.execute(sql, params).df()
        for name in zoned:
            frame[name] = frame[name].dt.tz_localize("UTC")
        return frame

    def __enter__(self) -> MetricsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def open_metrics(
    path: str | Path = DEFAULT_PATH, *, clock: Clock | None = None
) -> Iterator[MetricsStore]:
    """Open (or create) the metrics database, bringing its schema up to date, and close it after.

    Args:
        path: The DuckDB file, created with its folder if missing; ``":memory:"`` for tests.
        clock: Where experiments' start and finish times come from (the wall clock by default).

    Raises:
        ConfigError: the file is not a DuckDB database, or holds other tables of these names.
        SchemaTooNew: the file was written by a newer agentlab.
        StoreError: DuckDB could not open it (another process writing to it, ...).
    """
    store = connect_metrics(path, clock=clock)
    try:
        yield store
    finally:
        store.close()


def connect_metrics(path: str | Path = DEFAULT_PATH, *, clock: Clock | None = None) -> MetricsStore:
    """Like :func:`open_metrics`, for callers that close the store themselves."""
    name = str(path)
    url = f"duckdb://{name}"
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(name)
    except duckdb.IOException as exc:
        if "not a valid DuckDB database" in str(exc):
            raise ConfigError(
                f"{name}: not a DuckDB database, so not a metrics store",
                hint="point open_metrics at a .duckdb file agentlab wrote, or at a new path; "
                "the file was left as it is",
            ) from exc
        raise StoreError(
            f"{url}: cannot open the metrics store: {exc}",
            hint="is another process writing to this file? DuckDB allows one writer",
        ) from exc
    except duckdb.Error as exc:
        raise StoreError(f"{url}: cannot open the metrics store: {exc}") from exc
    try:
        conn.execute("SET TimeZone = 'UTC'")
        _migrate(conn, url)
    except BaseException:
        conn.close()
        raise
    return MetricsStore(conn, url=url, clock=clock or SystemClock())


def _migrate(conn: duckdb.DuckDBPyConnection, url: str) -> None:
    conn.begin()
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS agentlab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = conn.execute("SELECT value FROM agentlab_meta WHERE key = ?", [SCHEMA_KEY]).fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise SchemaTooNew(
                f"{url}: metrics schema {version}, but this agentlab knows up to {len(MIGRATIONS)}",
                hint="upgrade agentlab (pip install -U agentlab), or open another file; "
                "nothing in this one was changed",
            )
        if version == 0:
            taken = {
                name
                for (name,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                ).fetchall()
            } & {*TABLES, "kpis"}
            if taken:
                raise ConfigError(
                    f"{url}: holds tables {', '.join(sorted(taken))} that are not the "
                    "metrics store's (is it the event store's file?)",
                    hint="give the metrics their own file, e.g. .agentlab/lab.duckdb",
                )
        for migration in MIGRATIONS[version:]:
            conn.execute(migration)
        if version < len(MIGRATIONS):
            conn.execute(
                "INSERT INTO agentlab_meta VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                [SCHEMA_KEY, str(len(MIGRATIONS))],
            )
        have = {
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = 'runs'"
            ).fetchall()
        }
        for name, kind in _RUN_TYPES.items():
            if name not in have:
                conn.execute(f'ALTER TABLE runs ADD COLUMN "{name}" {kind}')
        conn.execute(KPIS_VIEW)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


_SPEC_MATCH = (
    "suite = ? AND config = ? AND model = ? AND mode = ? AND code_version = ? AND repeats = ? "
    "AND seed = ? AND baseline_model IS NOT DISTINCT FROM ?"
)


def _spec_params(spec: ExperimentSpec) -> list[Any]:
    return [
        spec.suite,
        spec.config,
        spec.model,
        spec.mode,
        spec.code_version,
        spec.repeats,
        spec.seed,
        spec.baseline_model,
    ]


def _filters(
    *, experiment_ids: str | Sequence[str] | None = None, **values: str | None
) -> tuple[str, list[Any]]:
    """A WHERE clause (or nothing) for the given filters, and its parameters."""
    conditions: list[str] = []
    params: list[Any] = []
    if experiment_ids is not None:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        conditions.append("list_contains(?, experiment_id)")
        params.append(ids)
    for name, value in values.items():
        if value is not None:
            conditions.append(f"{name} = ?")
            params.append(value)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), params


def _batch_rows(
    experiment_id: str, runs: Iterable[tuple[RunResult, Sequence[Event]]]
) -> tuple[dict[str, list[list[Any]]], set[tuple[str, int]]]:
    """The rows of each run table for a batch of runs, and the batch's (task, repetition) keys.

    Raises:
        ValueError: a result belongs to another experiment, or a run is in the batch twice.
        InvalidEvent: a run's events do not tell one run's story.
    """
    rows: dict[str, list[list[Any]]] = {table: [] for table in _RUN_TABLES}
    keys: set[tuple[str, int]] = set()
    for result, events in runs:
        if result.experiment_id != experiment_id:
            raise ValueError(
                f"the result of task {result.task_id!r} belongs to experiment "
                f"{result.experiment_id!r}, not {experiment_id!r}"
            )
        if (result.task_id, result.repetition) in keys:
            raise ValueError(
                f"task {result.task_id!r}, repetition {result.repetition}, is in the batch twice"
            )
        keys.add((result.task_id, result.repetition))
        steps, event_rows, artifacts = _run_rows(
            (experiment_id, result.task_id, result.repetition), events
        )
        rows["runs"].append(
            [
                json.dumps(_jsonable(getattr(result, name)))
                if name in _JSON_RUN_COLUMNS
                else getattr(result, name)
                for name in RUN_COLUMNS
            ]
        )
        rows["steps"] += steps
        rows["events"] += event_rows
        rows["artifacts"] += artifacts
    return rows, keys


def _run_rows(
    key: tuple[str, str, int], events: Sequence[Event]
) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    if not events:
        return [], [], []
    state = project_run(events)
    steps = []
    for entry in sorted(state.steps.values(), key=lambda s: s.step.position):
        decision = entry.decision
        approved_by = getattr(decision, "approved_by", None)
        rejected_by = getattr(decision, "rejected_by", None)
        steps.append(
            [
                *key,
                str(state.run.run_id),
                str(entry.step.step_id),
                entry.step.position,
                entry.step.tool,
                entry.step.side_effect.value,
                entry.status,
                entry.attempts,
                entry.last_error.error_code if entry.last_error is not None else None,
                decision.approver if decision is not None else None,
                approved_by,
                rejected_by,
                entry.was_reworked,
                entry.dry_run_diff is not None,
                entry.is_preview_only,
                entry.latency_ms,
            ]
        )
    event_rows = [[*key, str(e.run_id), e.seq, e.kind, e.at, e.model_dump_json()] for e in events]
    artifacts = [
        [
            *key,
            str(e.run_id),
            str(e.artifact.artifact_id),
            e.artifact.step_id,
            e.artifact.kind,
            e.artifact.media_type,
            e.artifact.uri,
            e.at,
            len(json.dumps(e.artifact.content)) if e.artifact.content is not None else 0,
        ]
        for e in events
        if isinstance(e, ArtifactRecorded)
    ]
    return steps, event_rows, artifacts


def _insert(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Append ``rows`` to ``table`` through a DataFrame.

    DuckDB binds ``VALUES (?, ...)`` parameters one at a time (0.16 ms an event row); a
    DataFrame of Python objects is read as a table, ten times faster.
    """
    if not rows:
        return
    frame = pd.DataFrame(list(rows), columns=list(columns), dtype=object)
    names = ", ".join(f'"{name}"' for name in columns)
    conn.register("_new_rows", frame)
    try:
        conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _new_rows")
    finally:
        conn.unregister("_new_rows")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
