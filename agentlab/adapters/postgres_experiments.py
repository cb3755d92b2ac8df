"""The lab's experiment log in PostgreSQL, for suites whose runs are spread over machines.

Workers on many machines write finished runs to one database at once, so a worker that dies
loses nothing that it recorded, and a suite resumes where it stopped. The rule that makes
that safe is **record once**: the first writer of an (experiment, task, repetition) keeps it;
a later writer of the same run (a task retried after its worker died, or given to two
workers) changes nothing, and its events are not written. The one exception is a run
recorded with status ``error``: a later attempt replaces it, with its events, as
:class:`~agentlab.lab.metrics.MetricsStore` does (a resumed suite runs errored runs again).

The primary key settles races: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE status = 'error'``
either takes the row, replaces an errored one, or leaves it (a concurrent writer of the same
key waits for the first to commit, then sees its row). Only the runs a batch took have their
events written, in the same transaction.

Reports and ``compare`` read DuckDB: :func:`agentlab.lab.metrics.copy_experiments` copies
experiments from here into a :class:`~agentlab.lab.metrics.MetricsStore`. See
docs/postgres-experiments.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple, Self

from agentlab.adapters._schema import apply_migrations
from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import BackendError, MissingDependency, StoreClosed, StoreError
from agentlab.core.events import Event, parse_event
from agentlab.core.results import Experiment, ExperimentSpec, RunResult

try:
    import psycopg
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "PostgresExperimentLog needs psycopg and psycopg-pool",
        hint="pip install 'agentlab[postgres]'",
    ) from exc

from agentlab.adapters.postgres_store import connect_pool, redact_url

SCHEMA_KEY = "experiment_log_version"
"""This log's row in ``agentlab_meta`` (the event store and the other logs keep theirs)."""

MIGRATIONS: list[str] = [
    # 1: experiments, their runs (recorded once), and the runs' events.
    # Append only: a migration's position in this list is the schema version it brings.
    # Runs and events are JSON, not JSONB: JSONB reorders the keys of their free-form parts
    # (a tool's result, a world diff), and a run copied into DuckDB should read byte for
    # byte as it was recorded. The spec is JSONB: flat, and matched by its columns anyway.
    """
    CREATE TABLE lab_experiments (
        experiment_id TEXT PRIMARY KEY,
        spec JSONB NOT NULL,
        suite TEXT NOT NULL,
        config TEXT NOT NULL,
        model TEXT NOT NULL,
        mode TEXT NOT NULL,
        code_version TEXT NOT NULL,
        repeats INTEGER NOT NULL,
        seed BIGINT NOT NULL,
        baseline_model TEXT,
        label TEXT NOT NULL DEFAULT '',
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ
    );
    CREATE INDEX lab_experiments_unfinished ON lab_experiments (suite, config, model, started_at)
        WHERE finished_at IS NULL;
    CREATE TABLE lab_runs (
        experiment_id TEXT NOT NULL REFERENCES lab_experiments ON DELETE CASCADE,
        task_id TEXT NOT NULL,
        repetition INTEGER NOT NULL CHECK (repetition >= 0),
        run_id TEXT,
        status TEXT NOT NULL,
        success BOOLEAN NOT NULL,
        result JSON NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL,
        recorded_by TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (experiment_id, task_id, repetition)
    );
    CREATE TABLE lab_run_events (
        experiment_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        repetition INTEGER NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL,
        body JSON NOT NULL,
        PRIMARY KEY (experiment_id, task_id, repetition, seq),
        FOREIGN KEY (experiment_id, task_id, repetition)
            REFERENCES lab_runs ON DELETE CASCADE
    );
    """,
]

_EXPERIMENT_COLUMNS = (
    "experiment_id, spec::text, label, started_at, finished_at"  # spec read back as JSON text
)
_SPEC_MATCH = (
    "suite = %s AND config = %s AND model = %s AND mode = %s AND code_version = %s "
    "AND repeats = %s AND seed = %s AND baseline_model IS NOT DISTINCT FROM %s"
)
"""The same match as MetricsStore's: by the spec's fields, so a field added to ExperimentSpec
later does not make older experiments unresumable."""

# One statement for the whole batch: the arrays are unnested into rows. A key already taken
# by a run that did not error is left alone (and not returned); an errored one is replaced.
# Rows are taken in key order, so two writers of overlapping batches cannot deadlock.
_UPSERT_RUNS = """
    INSERT INTO lab_runs AS r
        (experiment_id, task_id, repetition, run_id, status, success, result, recorded_at,
         recorded_by)
    SELECT %s, t.task_id, t.repetition, t.run_id, t.status, t.success, t.result::json, %s, %s
    FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::bool[], %s::text[])
        AS t(task_id, repetition, run_id, status, success, result)
    ORDER BY t.task_id COLLATE "C", t.repetition
    ON CONFLICT (experiment_id, task_id, repetition) DO UPDATE SET
        run_id = EXCLUDED.run_id,
        status = EXCLUDED.status,
        success = EXCLUDED.success,
        result = EXCLUDED.result,
        recorded_at = EXCLUDED.recorded_at,
        recorded_by = EXCLUDED.recorded_by,
        attempts = r.attempts + 1
    WHERE r.status = 'error'
    RETURNING task_id, repetition, attempts
"""


class RecordedRuns(NamedTuple):
    """What one :meth:`PostgresExperimentLog.record_runs` call did with its batch."""

    new: int
    """Runs the log did not hold, now recorded."""
    replaced: int
    """Runs that had been recorded with status ``error``, replaced by this attempt."""
    duplicates: int
    """Runs another writer had recorded already: nothing of them was written."""


class RunCounts(NamedTuple):
    """How much of an experiment the log holds (for tests, the CLI, a runner's progress)."""

    runs: int
    errored: int
    """Runs whose status is ``error``: a resumed suite runs them again."""
    events: int
    by_worker: dict[str, int]
    """Runs by ``recorded_by`` (the empty string for writers that gave no name)."""


class PostgresExperimentLog:
    """Experiments, their graded runs and the runs' events in PostgreSQL.

    Implements the lab's ``ExperimentLog`` (``arun_suite(metrics=...)``). Many processes on
    many machines may write at once: see the module's docstring for the record-once rule.
    The methods are thread-safe (each call borrows a connection from a pool).

    Args:
        url: A libpq URL, e.g. ``postgresql://agentlab@db.internal/agentlab``. Put the
            password in ``PGPASSWORD`` or ``~/.pgpass`` rather than in the URL; messages
            never show it.
        recorded_by: Stored with every run this instance records (a Dask worker's name), so
            that one can tell which worker wrote what; one instance per worker.
        clock: Gives ``started_at``, ``finished_at`` and ``recorded_at`` (the wall clock by
            default).
        max_connections: Size of the connection pool that threads share.

    Raises:
        BackendError: the server cannot be reached or the database does not exist.
        SchemaTooNew: the database was written by a newer agentlab.
    """

    def __init__(
        self,
        url: str,
        *,
        recorded_by: str = "",
        clock: Clock | None = None,
        max_connections: int = 4,
    ) -> None:
        self.url = redact_url(url)
        self.writer = recorded_by
        """The name stored in ``recorded_by`` with each run this instance records."""
        self._clock = clock or SystemClock()
        self._pool: ConnectionPool | None = connect_pool(url, max_connections=max_connections)
        try:
            with self._transaction() as conn:
                # One migrator at a time, however many workers open the log together.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlab_schema'))")
                apply_migrations(
                    conn,
                    key=SCHEMA_KEY,
                    migrations=MIGRATIONS,
                    url=self.url,
                    sql=lambda s: s.replace("?", "%s"),
                )
        except BaseException:
            self.close()  # a pool left to the garbage collector joins its threads from __del__
            raise

    # --- writing -------------------------------------------------------------------------

    def start_experiment(self, spec: ExperimentSpec, label: str = "") -> Experiment:
        """Add an experiment, unfinished, starting now.

        Its id is made as MetricsStore makes one (``exp-`` and twelve hex digits of the spec,
        the time and how many experiments there are; a ``live`` one adds random bits), under
        a lock so that two processes starting experiments at once get two ids.

        Args:
            spec: What identifies it (suite, config, model, mode, code version, ...).
            label: Free text to find it by: ``nightly``, a notebook's name.
        """
        started_at = self._clock.now()
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlab_lab_experiments'))")
            (count,) = conn.execute("SELECT count(*) FROM lab_experiments").fetchone() or (0,)
            # A live experiment's id names its runs' worlds on a shared server: never reuse
            # one, not even one another database made (as the runner does for live runs).
            salt = os.urandom(4).hex() if spec.mode == "live" else ""
            digest = hashlib.sha256(
                f"{spec.model_dump_json()}|{started_at.isoformat()}|{count}{salt}".encode()
            ).hexdigest()
            experiment = Experiment(
                experiment_id=f"exp-{digest[:12]}", spec=spec, started_at=started_at, label=label
            )
            conn.execute(
                "INSERT INTO lab_experiments (experiment_id, spec, suite, config, model, mode, "
                "code_version, repeats, seed, baseline_model, label, started_at) "
                "VALUES (%s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    experiment.experiment_id,
                    spec.model_dump_json(),
                    *_spec_params(spec),
                    label,
                    started_at,
                ],
            )
        return experiment

    def record_runs(
        self, experiment_id: str, runs: Sequence[tuple[RunResult, Sequence[Event]]]
    ) -> RecordedRuns:
        """Record finished runs and their events, in one transaction: all of the batch or none.

        A run the log holds already is left as it is and its events are not written, unless
        it was recorded with status ``error``: then this attempt replaces it and its events.

        Args:
            experiment_id: The experiment the runs belong to (each ``result.experiment_id``).
            runs: Graded runs with their events in seq order (none for an errored run).

        Returns:
            How many runs were new, replaced an errored one, or were there already.

        Raises:
            ValueError: a result belongs to another experiment, or a run is in twice.
            StoreError: no such experiment.
        """
        by_key: dict[tuple[str, int], tuple[RunResult, Sequence[Event]]] = {}
        for result, events in runs:
            if result.experiment_id != experiment_id:
                raise ValueError(
                    f"the result of task {result.task_id!r} belongs to experiment "
                    f"{result.experiment_id!r}, not {experiment_id!r}"
                )
            key = (result.task_id, result.repetition)
            if key in by_key:
                raise ValueError(
                    f"task {result.task_id!r}, repetition {result.repetition}, is in the "
                    "batch twice"
                )
            by_key[key] = (result, events)
        if not by_key:
            return RecordedRuns(0, 0, 0)
        results = [result for result, _ in by_key.values()]
        with self._transaction() as conn:
            self._require_experiment(conn, experiment_id)
            taken = conn.execute(
                _UPSERT_RUNS,
                [
                    experiment_id,
                    self._clock.now(),
                    self.writer,
                    [r.task_id for r in results],
                    [r.repetition for r in results],
                    [r.run_id for r in results],
                    [r.status for r in results],
                    [r.success for r in results],
                    [r.model_dump_json() for r in results],
                ],
            ).fetchall()
            replaced = [(task_id, rep) for task_id, rep, attempts in taken if attempts > 1]
            if replaced:  # the errored attempt's events, if it had any, go with it
                conn.execute(
                    "DELETE FROM lab_run_events WHERE experiment_id = %s "
                    "AND (task_id, repetition) IN (SELECT * FROM unnest(%s::text[], %s::int[]))",
                    [experiment_id, [k[0] for k in replaced], [k[1] for k in replaced]],
                )
            with conn.cursor() as cur, cur.copy(
                "COPY lab_run_events (experiment_id, task_id, repetition, seq, run_id, kind, "
                "occurred_at, body) FROM STDIN"
            ) as copy:  # fmt: skip
                for task_id, repetition, _ in taken:
                    for event in by_key[(task_id, repetition)][1]:
                        copy.write_row(
                            (
                                experiment_id,
                                task_id,
                                repetition,
                                event.seq,
                                str(event.run_id),
                                event.kind,
                                event.at,
                                event.model_dump_json(),
                            )
                        )
        return RecordedRuns(
            new=len(taken) - len(replaced),
            replaced=len(replaced),
            duplicates=len(by_key) - len(taken),
        )

    def finish_experiment(self, experiment_id: str) -> Experiment:
        """Mark an experiment finished now, and return it.

        Finishing it again keeps the first time: with many workers, the first to see the
        suite done says when it finished.

        Raises:
            StoreError: no such experiment.
        """
        with self._transaction() as conn:
            conn.execute(
                "UPDATE lab_experiments SET finished_at = coalesce(finished_at, %s) "
                "WHERE experiment_id = %s",
                [self._clock.now(), experiment_id],
            )
        return self.experiment(experiment_id)

    # --- reading -------------------------------------------------------------------------

    def experiment(self, experiment_id: str) -> Experiment:
        """One experiment by id.

        Raises:
            StoreError: no such experiment.
        """
        found = self._experiments("WHERE experiment_id = %s", [experiment_id])
        if not found:
            raise StoreError(
                f"{self.url}: no experiment {experiment_id!r}",
                hint="list them with PostgresExperimentLog.experiments()",
            )
        return found[0]

    def experiments(self, *, is_finished: bool | None = None) -> list[Experiment]:
        """Every experiment, oldest first; only finished (or unfinished) ones if told."""
        where = {
            None: "",
            True: "WHERE finished_at IS NOT NULL",
            False: "WHERE finished_at IS NULL",
        }
        return self._experiments(where[is_finished] + " ORDER BY started_at, experiment_id", [])

    def unfinished_experiment(self, spec: ExperimentSpec) -> Experiment | None:
        """The latest unfinished experiment with this very spec, to resume an interrupted suite."""
        found = self._experiments(
            f"WHERE finished_at IS NULL AND {_SPEC_MATCH} "
            "ORDER BY started_at DESC, experiment_id DESC LIMIT 1",
            _spec_params(spec),
        )
        return found[0] if found else None

    def finished_runs(self, experiment_id: str) -> set[tuple[str, int]]:
        """The (task_id, repetition) pairs an experiment holds, runs that errored aside.

        A resumed suite runs the others again (an errored run is replaced, never duplicated).
        """
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT task_id, repetition FROM lab_runs WHERE experiment_id = %s "
                "AND status <> 'error'",
                [experiment_id],
            ).fetchall()
        return {(task_id, repetition) for task_id, repetition in rows}

    def results(self, experiment_id: str) -> list[RunResult]:
        """An experiment's runs as RunResults, by task and repetition (as MetricsStore orders)."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT result::text FROM lab_runs WHERE experiment_id = %s "
                'ORDER BY task_id COLLATE "C", repetition',
                [experiment_id],
            ).fetchall()
        return [RunResult.model_validate_json(body) for (body,) in rows]

    def events(self, experiment_id: str, task_id: str, repetition: int = 0) -> list[Event]:
        """One run's events in seq order (none for a run that could not be carried out)."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT seq, body::text FROM lab_run_events WHERE experiment_id = %s "
                "AND task_id = %s AND repetition = %s ORDER BY seq",
                [experiment_id, task_id, repetition],
            ).fetchall()
        where = f"{self.url} {experiment_id} {task_id} r{repetition}"
        return [parse_event(body, where=f"{where} seq {seq}") for seq, body in rows]

    def iter_runs(
        self, experiment_id: str, *, batch_size: int = 256
    ) -> Iterator[tuple[RunResult, list[Event]]]:
        """Every run of an experiment with its events, by task and repetition.

        Read ``batch_size`` runs per query (keyset pages, so no connection is held between
        pages): copying a large experiment does not hold it all in memory.
        """
        after: tuple[str, int] = ("", -1)
        while True:
            with self._transaction() as conn:
                page = conn.execute(
                    "SELECT task_id, repetition, result::text FROM lab_runs "
                    'WHERE experiment_id = %s AND (task_id COLLATE "C", repetition) > (%s, %s) '
                    'ORDER BY task_id COLLATE "C", repetition LIMIT %s',
                    [experiment_id, *after, batch_size],
                ).fetchall()
                if not page:
                    return
                rows = conn.execute(
                    "SELECT task_id, repetition, seq, body::text FROM lab_run_events "
                    "WHERE experiment_id = %s AND (task_id, repetition) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::int[])) ORDER BY seq",
                    [experiment_id, [p[0] for p in page], [p[1] for p in page]],
                ).fetchall()
            events: dict[tuple[str, int], list[Event]] = {}
            for task_id, repetition, seq, body in rows:
                where = f"{self.url} {experiment_id} {task_id} r{repetition} seq {seq}"
                events.setdefault((task_id, repetition), []).append(parse_event(body, where=where))
            for task_id, repetition, body in page:
                yield RunResult.model_validate_json(body), events.get((task_id, repetition), [])
            after = (page[-1][0], page[-1][1])

    def run_counts(self, experiment_id: str) -> RunCounts:
        """How many runs (errored ones too) and events an experiment holds, and who wrote them."""
        with self._transaction() as conn:
            workers = conn.execute(
                "SELECT recorded_by, count(*), count(*) FILTER (WHERE status = 'error') "
                "FROM lab_runs WHERE experiment_id = %s GROUP BY recorded_by",
                [experiment_id],
            ).fetchall()
            (events,) = conn.execute(
                "SELECT count(*) FROM lab_run_events WHERE experiment_id = %s", [experiment_id]
            ).fetchone() or (0,)
        return RunCounts(
            runs=sum(n for _, n, _ in workers),
            errored=sum(e for _, _, e in workers),
            events=events,
            by_worker={worker: n for worker, n, _ in workers},
        )

    def recorded_by(self, experiment_ids: str | Sequence[str]) -> dict[str, int]:
        """Runs by writer (``recorded_by``) over some experiments: which worker recorded what."""
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT recorded_by, count(*) FROM lab_runs WHERE experiment_id = ANY(%s) "
                "GROUP BY recorded_by ORDER BY recorded_by",
                [ids],
            ).fetchall()
        return dict(rows)

    # --- plumbing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pool; later calls raise StoreClosed. Closing twice is harmless."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._pool
        if pool is None:
            raise StoreClosed(f"{self.url}: the experiment log is closed", hint="open a new one")
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise BackendError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def _require_experiment(self, conn: psycopg.Connection[Any], experiment_id: str) -> None:
        if not conn.execute(
            "SELECT 1 FROM lab_experiments WHERE experiment_id = %s", [experiment_id]
        ).fetchone():
            raise StoreError(
                f"{self.url}: no experiment {experiment_id!r}",
                hint="start it with start_experiment(spec) and record into its id",
            )

    def _experiments(self, where: str, params: list[Any]) -> list[Experiment]:
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_EXPERIMENT_COLUMNS} FROM lab_experiments {where}", params
            ).fetchall()
        return [
            Experiment(
                experiment_id=experiment_id,
                spec=ExperimentSpec.model_validate_json(spec),
                label=label,
                started_at=_utc(started_at),
                finished_at=_utc(finished_at) if finished_at is not None else None,
            )
            for experiment_id, spec, label, started_at, finished_at in rows
        ]


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


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
