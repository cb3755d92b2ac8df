"""The production VectorIndex: PostgreSQL + pgvector, approximate search with ivfflat or hnsw.

The table is the article's ``rag_chunks`` (section 5.2) with four columns more: ``title`` (to
cite a hit), ``attributes`` (jsonb, for ABAC), ``expires_at`` (retention) and a unique
``(doc_id, chunk_no)``. Its index is the article's ``ivfflat (embedding vector_cosine_ops)
WITH (lists = 200)``, or hnsw (``m = 16, ef_construction = 64``).

Every search runs in its own transaction that first sets, with ``SET LOCAL`` semantics
(``set_config(..., true)``), the knobs of that one query: ``ivfflat.probes`` (10 unless the
tuning says otherwise, as the article suggests), ``hnsw.ef_search``, and pgvector 0.8's
iterative scans.

Why iterative scans: an approximate index finds the nearest rows first and PostgreSQL applies
the ``WHERE`` clause afterwards. With ``probes = 10`` ivfflat reads 10 of 200 lists; if the
data class filter rejects most of their rows (an actor cleared for ``public`` only, in a
corpus that is mostly ``internal``), fewer than ``k`` rows survive, possibly none: the filter
starves the result even though matching chunks exist. With ``ivfflat.iterative_scan`` and
``hnsw.iterative_scan`` set to ``relaxed_order`` the index keeps scanning (more lists, or
further along the graph, up to ``ivfflat.max_probes`` / ``hnsw.max_scan_tuples``) until ``k``
rows pass the filter. "Relaxed" means rows may come slightly out of order, so the query
re-sorts them in an outer ``SELECT`` over a materialised CTE, as pgvector's docs advise. The
filter itself is always in the ``WHERE`` clause: tuning changes what is *found*, never what
is *allowed*.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Self

from numpy.typing import ArrayLike

from agentlab.adapters._vector_index import (
    check_table_and_dimension,
    hit_from_row,
    prepare_rows,
    settle_meta,
)
from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import (
    BackendError,
    ConfigError,
    DuplicateChunk,
    IndexClosed,
    MissingDependency,
)
from agentlab.rag.access import AccessScope
from agentlab.rag.documents import Chunk
from agentlab.rag.index import Hit, SearchTuning, check_query

try:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg import errors as pg_errors
    from psycopg.types.json import Jsonb
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "PgvectorIndex needs psycopg, psycopg-pool and pgvector",
        hint="pip install 'agentlab[postgres]'",
    ) from exc

from agentlab.adapters.postgres_store import redact_url

SCHEMA_VERSION = 1
IndexMethod = Literal["ivfflat", "hnsw", "none"]
DEFAULT_PROBES = 10
"""The article's starting point: ``SET ivfflat.probes = 10``."""


class PgvectorIndex:
    """A VectorIndex in PostgreSQL with pgvector.

    Args:
        url: A libpq URL; put the password in ``PGPASSWORD`` or ``~/.pgpass``, not the URL.
        dimension: Length of every embedding (the embedder's ``dimension``), at most 2,000.
        embedder_name: The embedder's ``name``; recorded on first use, refused if the table
            was built with another one.
        table: The chunks' table, ``rag_chunks`` by default.
        method: The approximate index to create if the table has none: ``ivfflat`` (the
            article's), ``hnsw``, or ``none`` (create it later with :meth:`build_index`).
        lists: ivfflat's number of lists; the article's 200 suits up to a few million chunks.
        m: hnsw's links per node.
        ef_construction: hnsw's candidate list while building.
        probes: ``ivfflat.probes`` of a query whose tuning does not say.
        ef_search: ``hnsw.ef_search`` of a query whose tuning does not say.
        clock: Decides what has expired; the wall clock by default.
        max_connections: Size of the connection pool that threads share.
    """

    def __init__(
        self,
        url: str,
        dimension: int,
        *,
        embedder_name: str | None = None,
        table: str = "rag_chunks",
        method: IndexMethod = "ivfflat",
        lists: int = 200,
        m: int = 16,
        ef_construction: int = 64,
        probes: int = DEFAULT_PROBES,
        ef_search: int = 40,
        clock: Clock | None = None,
        max_connections: int = 4,
    ) -> None:
        check_table_and_dimension(table, dimension)
        if method not in ("ivfflat", "hnsw", "none"):
            raise ConfigError(f"index method {method!r} is not known", hint="ivfflat or hnsw")
        self.url = redact_url(url)
        self.dimension = dimension
        self.table = table
        self.default_tuning = SearchTuning(probes=probes, ef_search=ef_search)
        self._clock = clock or SystemClock()
        self._build = {"lists": lists, "m": m, "ef_construction": ef_construction}
        self._prepare_database(url)
        self._pool: ConnectionPool | None = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=True,
            timeout=30,
            configure=register_vector,
            kwargs={"autocommit": False},
        )
        self._lock = threading.Lock()
        try:
            self.embedder_name = self._migrate(embedder_name, method)
        except BaseException:
            self.close()  # a refused open leaves no pool (and no threads) behind
            raise

    def _migrate(self, embedder_name: str | None, method: IndexMethod) -> str | None:
        with self._transaction() as conn:
            # One migrator at a time, however many processes open the index together.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"agentlab:{self.table}"])
            is_new, bound = settle_meta(
                conn,
                table=self.table,
                dimension=self.dimension,
                embedder_name=embedder_name,
                schema_version=SCHEMA_VERSION,
                url=self.url,
                sql=_sql,
            )
            if is_new:
                conn.execute(self._schema())
            if method != "none" and not self._ann_indexes(conn):
                conn.execute(self._create_index_sql(method))
        return bound

    def _prepare_database(self, url: str) -> None:
        """Connect once (so a failure says why) and make sure the extension exists."""
        try:
            with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except pg_errors.InsufficientPrivilege as exc:
            raise BackendError(
                f"{self.url}: the pgvector extension is not installed, and this user may "
                "not install it",
                hint="ask the database owner to run CREATE EXTENSION vector once",
            ) from exc
        except psycopg.Error as exc:
            raise BackendError(
                f"{self.url}: cannot connect: {str(exc).strip()}",
                hint="is the server up, does the database exist, is pgvector available?",
            ) from exc

    def _schema(self) -> str:
        t = self.table
        return f"""
            CREATE TABLE IF NOT EXISTS {t} (
                id bigserial PRIMARY KEY,
                doc_id text NOT NULL,
                chunk_no int NOT NULL CHECK (chunk_no >= 0),
                title text NOT NULL DEFAULT '',
                content text NOT NULL,
                embedding vector({self.dimension}) NOT NULL,
                data_class text NOT NULL DEFAULT 'internal',
                attributes jsonb NOT NULL DEFAULT '{{}}',
                expires_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT {t}_doc_chunk UNIQUE (doc_id, chunk_no)
            );
            CREATE INDEX IF NOT EXISTS {t}_expires_at ON {t} (expires_at)
                WHERE expires_at IS NOT NULL;
        """

    def _create_index_sql(self, method: IndexMethod) -> str:
        t = self.table
        if method == "ivfflat":
            return (
                f"CREATE INDEX {t}_ivfflat ON {t} USING ivfflat (embedding vector_cosine_ops) "
                f"WITH (lists = {int(self._build['lists'])})"
            )
        return (
            f"CREATE INDEX {t}_hnsw ON {t} USING hnsw (embedding vector_cosine_ops) "
            f"WITH (m = {int(self._build['m'])}, "
            f"ef_construction = {int(self._build['ef_construction'])})"
        )

    def _ann_indexes(self, conn: psycopg.Connection) -> list[str]:
        rows = conn.execute(
            "SELECT i.relname FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_am a ON a.oid = i.relam "
            "WHERE t.relname = %s AND t.relnamespace = to_regnamespace(current_schema()) "
            "AND a.amname IN ('ivfflat', 'hnsw')",
            [self.table],
        ).fetchall()
        return [row[0] for row in rows]

    @property
    def method(self) -> IndexMethod:
        """The approximate index the table has now: ``ivfflat``, ``hnsw`` or ``none``."""
        with self._transaction() as conn:
            names = self._ann_indexes(conn)
        if not names:
            return "none"
        return "hnsw" if names[0].endswith("_hnsw") else "ivfflat"

    def build_index(
        self,
        method: IndexMethod,
        *,
        lists: int | None = None,
        m: int | None = None,
        ef_construction: int | None = None,
        maintenance_work_mem: str | None = None,
    ) -> None:
        """Drop the table's approximate index and build ``method`` anew over the current rows.

        ivfflat picks its list centres from the rows present when it is built: build (or
        rebuild) it after a bulk load, not on an empty table.

        Args:
            method: ``ivfflat``, ``hnsw``, or ``none`` to drop the index only.
            lists: ivfflat's lists (default: as opened).
            m: hnsw's links per node (default: as opened).
            ef_construction: hnsw's build-time candidate list (default: as opened).
            maintenance_work_mem: e.g. ``"1GB"`` for this build only; hnsw builds are much
                faster when the graph fits in it.
        """
        for key, value in (("lists", lists), ("m", m), ("ef_construction", ef_construction)):
            if value is not None:
                self._build[key] = value
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"agentlab:{self.table}"])
            if maintenance_work_mem is not None:
                conn.execute(
                    "SELECT set_config('maintenance_work_mem', %s, true)", [maintenance_work_mem]
                )
            for name in self._ann_indexes(conn):
                conn.execute(f'DROP INDEX "{name}"')
            if method != "none":
                conn.execute(self._create_index_sql(method))

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        pool = self._pool
        if pool is None:
            raise IndexClosed(f"{self.url}: the index is closed", hint="open a new one")
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except pg_errors.UniqueViolation as exc:
            raise DuplicateChunk(
                f"{self.url}: a chunk of the batch is indexed already",
                hint="pass replace=True to index a document again",
            ) from exc
        except psycopg.OperationalError as exc:
            raise BackendError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def add(self, chunks: Sequence[Chunk], embeddings: ArrayLike, *, replace: bool = False) -> None:
        """See :meth:`agentlab.rag.VectorIndex.add`; rows go in with binary COPY."""
        rows, array = prepare_rows(
            chunks, embeddings, dimension=self.dimension, now=self._clock.now()
        )
        with self._transaction() as conn:
            if not rows:
                return
            if replace:
                conn.execute(
                    f"DELETE FROM {self.table} WHERE doc_id = ANY(%s)",
                    [sorted({row[0] for row in rows})],
                )
            with (
                conn.cursor() as cur,
                cur.copy(
                    f"COPY {self.table} (doc_id, chunk_no, title, content, embedding, "
                    "data_class, attributes, expires_at, created_at) "
                    "FROM STDIN WITH (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(
                    [
                        "text",
                        "int4",
                        "text",
                        "text",
                        "vector",
                        "text",
                        "jsonb",
                        "timestamptz",
                        "timestamptz",
                    ]
                )
                for row, vector in zip(rows, array, strict=True):
                    copy.write_row((*row[:4], vector, row[4], Jsonb(row[5]), *row[6:]))

    def search(
        self,
        query_embedding: ArrayLike,
        *,
        scope: AccessScope,
        k: int = 5,
        tuning: SearchTuning | None = None,
    ) -> list[Hit]:
        """See :meth:`agentlab.rag.VectorIndex.search`; ``tuning`` applies to this query only."""
        query = check_query(query_embedding, dimension=self.dimension, k=k)
        if scope.allows_nothing:
            self._check_open()
            return []
        tuning = tuning or self.default_tuning
        probes = tuning.probes or self.default_tuning.probes
        ef_search = tuning.ef_search or self.default_tuning.ef_search
        iterative = "relaxed_order" if tuning.iterative_scan else "off"
        index_scan = "off" if tuning.exact else "on"  # off: a sequential scan, exact
        where, params = self._where(scope)
        with self._transaction() as conn:
            conn.execute(
                "SELECT set_config('ivfflat.probes', %s, true), "
                "set_config('hnsw.ef_search', %s, true), "
                "set_config('ivfflat.iterative_scan', %s, true), "
                "set_config('hnsw.iterative_scan', %s, true), "
                "set_config('enable_indexscan', %s, true)",
                [str(probes), str(ef_search), iterative, iterative, index_scan],
            )
            rows = conn.execute(
                "WITH hits AS MATERIALIZED ("
                " SELECT doc_id, chunk_no, title, content, data_class, attributes,"
                "  embedding <=> %s AS distance"
                f" FROM {self.table} WHERE {where}"
                "  ORDER BY embedding <=> %s LIMIT %s"
                ") SELECT doc_id, chunk_no, title, content, data_class, attributes, 1 - distance"
                " FROM hits ORDER BY distance, doc_id, chunk_no",
                [query, *params, query, k],
            ).fetchall()
        return [hit_from_row(row) for row in rows]

    def _where(self, scope: AccessScope) -> tuple[str, list[Any]]:
        """The scope as SQL: every value is a bound parameter, never pasted into the text."""
        clauses = ["data_class = ANY(%s)", "(expires_at IS NULL OR expires_at > %s)"]
        params: list[Any] = [sorted(scope.data_classes), self._clock.now()]
        if scope.doc_ids is not None:
            clauses.append("doc_id = ANY(%s)")
            params.append(sorted(scope.doc_ids))
        for key, allowed in sorted(scope.attributes.items()):
            clauses.append("(attributes -> %s) ?| %s::text[]")
            params += [key, sorted(allowed)]
        return " AND ".join(clauses), params

    def _check_open(self) -> None:
        if self._pool is None:
            raise IndexClosed(f"{self.url}: the index is closed", hint="open a new one")

    def delete_document(self, doc_id: str) -> int:
        """See :meth:`agentlab.rag.VectorIndex.delete_document`."""
        with self._transaction() as conn:
            cur = conn.execute(f"DELETE FROM {self.table} WHERE doc_id = %s", [doc_id])
            return cur.rowcount

    def purge_expired(self) -> int:
        """See :meth:`agentlab.rag.VectorIndex.purge_expired`."""
        with self._transaction() as conn:
            cur = conn.execute(
                f"DELETE FROM {self.table} WHERE expires_at <= %s", [self._clock.now()]
            )
            return cur.rowcount

    def count(self) -> int:
        """See :meth:`agentlab.rag.VectorIndex.count`."""
        with self._transaction() as conn:
            row = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the pool; later calls raise IndexClosed. Closing twice is harmless."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _sql(statement: str) -> str:
    return statement.replace("?", "%s")
