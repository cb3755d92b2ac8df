"""The production EventStore: PostgreSQL through psycopg 3.

Many processes and threads may append at once. Each append is one transaction: it reads the
tails of the runs it touches, checks the batch (``agentlab.store.rules``), and copies the rows
in. Two writers racing for the same (run_id, seq) or the same idempotency key are settled by
the primary keys: one wins, the other gets DuplicateEvent or DuplicateIdempotencyKey and
nothing of its batch is written. Triggers refuse UPDATE, DELETE and TRUNCATE, so the log is
append-only in the database itself, not only in this code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from agentlab.core.errors import (
    BackendError,
    DuplicateEvent,
    DuplicateIdempotencyKey,
    MissingDependency,
    SchemaTooNew,
    StoreClosed,
)
from agentlab.core.events import (
    Event,
    StepCommitted,
    ensure_events,
    idempotency_key_of,
    parse_event,
    step_id_of,
)
from agentlab.core.ids import RunId
from agentlab.store.rules import RunTail, check_batch, committed_keys, runs_of

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "PostgresEventStore needs psycopg and psycopg-pool",
        hint="pip install 'agentlab[postgres]'",
    ) from exc

MIGRATIONS: list[str] = [
    # 1: the event log, the committed-keys index, and triggers that keep both append-only.
    # Append only: a migration's position in this list is the schema version it brings.
    """
    CREATE TABLE events (
        pos BIGINT GENERATED ALWAYS AS IDENTITY,
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        kind TEXT NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL,
        step_id TEXT,
        idempotency_key TEXT,
        body JSONB NOT NULL,
        CONSTRAINT events_run_seq PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX events_pos ON events (pos);
    CREATE TABLE idempotency_keys (
        idempotency_key TEXT CONSTRAINT idempotency_keys_key PRIMARY KEY,
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL
    );
    CREATE FUNCTION agentlab_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'agentlab: % is append-only; % refused', TG_TABLE_NAME, TG_OP;
    END $$;
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION agentlab_refuse_change();
    CREATE TRIGGER idempotency_keys_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON idempotency_keys
        FOR EACH STATEMENT EXECUTE FUNCTION agentlab_refuse_change();
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class PostgresEventStore:
    """An EventStore in a PostgreSQL database.

    Args:
        url: A libpq URL, e.g. ``postgresql://agentlab@db.internal/agentlab``. Put the
            password in ``PGPASSWORD`` or ``~/.pgpass`` rather than in the URL.
        max_connections: Size of the connection pool that threads share.
    """

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self.url = redact_url(url)
        try:  # one plain connection first, so a failure says why (libpq's message has no password)
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise BackendError(
                f"{self.url}: cannot connect: {str(exc).strip()}",
                hint="is the server up, and does the database exist?",
            ) from exc
        self._pool: ConnectionPool | None = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=True,
            timeout=30,
            kwargs={"autocommit": False},
        )
        self._migrate()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        pool = self._pool
        if pool is None:
            raise StoreClosed(f"{self.url}: the store is closed", hint="open a new store")
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except pg_errors.UniqueViolation as exc:  # the backstop behind check_batch
            constraint = exc.diag.constraint_name
            if constraint == "idempotency_keys_key":
                raise DuplicateIdempotencyKey(
                    f"{self.url}: an idempotency key of the batch was committed concurrently",
                    hint="return the recorded result (EventStore.find_commit) instead",
                ) from exc
            raise DuplicateEvent(
                f"{self.url}: another writer appended at the same (run_id, seq) first",
                hint="re-read the run and continue after its last seq",
            ) from exc
        except psycopg.OperationalError as exc:
            raise BackendError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def _migrate(self) -> None:
        with self._transaction() as conn:
            # One migrator at a time, however many processes open the store together.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlab_schema'))")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS agentlab_meta "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = conn.execute(
                "SELECT value FROM agentlab_meta WHERE key = 'schema_version'"
            ).fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.url}: schema version {version}, but this agentlab knows up to "
                    f"{SCHEMA_VERSION}",
                    hint="upgrade agentlab (pip install -U agentlab), or open another store",
                )
            for migration in MIGRATIONS[version:]:
                conn.execute(migration)
            if version < SCHEMA_VERSION:
                conn.execute(
                    "INSERT INTO agentlab_meta VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [str(SCHEMA_VERSION)],
                )

    def append(self, events: Sequence[Event]) -> None:
        """Write all events or none; see :class:`~agentlab.store.EventStore` for the rules."""
        batch = ensure_events(events)
        commits = committed_keys(batch)
        with self._transaction() as conn:
            if not batch:
                return
            tails = {
                run_id: RunTail(seq, kind == "run_finished")
                for run_id, seq, kind in conn.execute(
                    "SELECT DISTINCT ON (run_id) run_id, seq, kind FROM events "
                    "WHERE run_id = ANY(%s) ORDER BY run_id, seq DESC",
                    [runs_of(batch)],
                )
            }
            taken = {}
            if commits:
                taken = {
                    key: (run_id, seq)
                    for key, run_id, seq in conn.execute(
                        "SELECT idempotency_key, run_id, seq FROM idempotency_keys "
                        "WHERE idempotency_key = ANY(%s)",
                        [[c.idempotency_key for c in commits]],
                    )
                }
            check_batch(batch, tails, where=self.url, taken_keys=taken)
            with conn.cursor() as cur:
                with cur.copy(
                    "COPY events (run_id, seq, kind, occurred_at, step_id, idempotency_key, body) "
                    "FROM STDIN"
                ) as copy:
                    for e in batch:
                        copy.write_row(
                            (
                                e.run_id,
                                e.seq,
                                e.kind,
                                e.at,
                                step_id_of(e),
                                idempotency_key_of(e),
                                e.model_dump_json(),
                            )
                        )
                if commits:
                    cur.executemany(
                        "INSERT INTO idempotency_keys VALUES (%s, %s, %s)",
                        [(c.idempotency_key, c.run_id, c.seq) for c in commits],
                    )

    def read(self, run_id: RunId, *, after_seq: int = -1) -> list[Event]:
        """The run's events after ``after_seq``, in order."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT seq, body::text FROM events WHERE run_id = %s AND seq > %s ORDER BY seq",
                [run_id, after_seq],
            ).fetchall()
        return [parse_event(body, where=f"{self.url} run {run_id} seq {seq}") for seq, body in rows]

    def run_ids(self) -> list[RunId]:
        """Every run, in the order the runs started."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT run_id FROM events WHERE seq = 0 ORDER BY pos").fetchall()
        return [RunId(run_id) for (run_id,) in rows]

    def find_commit(self, idempotency_key: str) -> StepCommitted | None:
        """The commit recorded under ``idempotency_key``, if any."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT e.run_id, e.seq, e.body::text FROM idempotency_keys k "
                "JOIN events e ON e.run_id = k.run_id AND e.seq = k.seq "
                "WHERE k.idempotency_key = %s",
                [idempotency_key],
            ).fetchone()
        if row is None:
            return None
        run_id, seq, body = row
        event = parse_event(body, where=f"{self.url} run {run_id} seq {seq}")
        assert isinstance(event, StepCommitted)
        return event

    def close(self) -> None:
        """Close the pool; later calls raise StoreClosed. Closing twice is harmless."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> PostgresEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
