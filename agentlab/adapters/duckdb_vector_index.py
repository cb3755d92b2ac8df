"""The embedded default VectorIndex: exact cosine search in a DuckDB file, no server.

Embeddings are ``FLOAT[d]`` array columns compared with ``array_cosine_similarity`` against
every row the scope allows: exact, so recall is 1 by construction, and fast enough for a
knowledge base of tens of thousands of chunks. The scope is the query's ``WHERE`` clause, so
DuckDB never even scores a chunk the actor may not read. For millions of chunks use
PostgreSQL + pgvector (``agentlab.adapters.pgvector_index``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Self

import duckdb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from agentlab.adapters._databases import DuckDBFile
from agentlab.adapters._vector_index import (
    check_table_and_dimension,
    hit_from_row,
    prepare_rows,
    settle_meta,
)
from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import DuplicateChunk, IndexClosed
from agentlab.rag.access import AccessScope
from agentlab.rag.documents import Chunk
from agentlab.rag.index import Hit, SearchTuning, check_query

SCHEMA_VERSION = 1
VECTORS_VIEW = "agentlab_vectors_being_added"


class DuckDBVectorIndex:
    """A VectorIndex in a DuckDB file; exact cosine similarity.

    Args:
        path: The database file (created with its folder if missing), or ``":memory:"``.
        dimension: Length of every embedding (the embedder's ``dimension``).
        embedder_name: The embedder's ``name``; recorded on first use, and refused if the file
            was built with another one.
        table: The chunks' table, ``rag_chunks`` by default.
        clock: Decides what has expired; the wall clock by default.
    """

    def __init__(
        self,
        path: str | Path,
        dimension: int,
        *,
        embedder_name: str | None = None,
        table: str = "rag_chunks",
        clock: Clock | None = None,
    ) -> None:
        check_table_and_dimension(table, dimension)
        self._db = DuckDBFile(path, what="vector index", closed_error=IndexClosed)
        self.path, self.url = self._db.path, self._db.url
        self.dimension = dimension
        self.table = table
        self._clock = clock or SystemClock()
        with self._transaction() as conn:
            is_new, self.embedder_name = settle_meta(
                conn,
                table=table,
                dimension=dimension,
                embedder_name=embedder_name,
                schema_version=SCHEMA_VERSION,
                url=self.url,
            )
            if is_new:
                conn.execute(self._schema())

    def _schema(self) -> str:
        t = self.table
        return f"""
            CREATE SEQUENCE IF NOT EXISTS {t}_id START 1;
            CREATE TABLE IF NOT EXISTS {t} (
                id BIGINT PRIMARY KEY DEFAULT nextval('{t}_id'),
                doc_id VARCHAR NOT NULL,
                chunk_no INTEGER NOT NULL CHECK (chunk_no >= 0),
                title VARCHAR NOT NULL DEFAULT '',
                content VARCHAR NOT NULL,
                embedding FLOAT[{self.dimension}] NOT NULL,
                data_class VARCHAR NOT NULL DEFAULT 'internal',
                attributes JSON NOT NULL DEFAULT '{{}}',
                expires_at TIMESTAMPTZ,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                UNIQUE (doc_id, chunk_no)
            );
        """

    def _transaction(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._db.transaction()

    def add(self, chunks: Sequence[Chunk], embeddings: ArrayLike, *, replace: bool = False) -> None:
        """See :meth:`agentlab.rag.VectorIndex.add`."""
        rows, array = prepare_rows(
            chunks, embeddings, dimension=self.dimension, now=self._clock.now()
        )
        if not rows:
            with self._transaction():  # a closed index refuses even an empty batch
                return
        columns: list[Any] = [list(column) for column in zip(*rows, strict=True)]
        columns[5] = [json.dumps(attributes) for attributes in columns[5]]
        n, d = array.shape
        # The view is registered outside the transaction, so that unregistering it still works
        # after a failed insert has aborted the transaction.
        with (
            self._db.locked() as raw,
            _vectors_view(raw, array) as view,
            self._transaction() as conn,
        ):
            if replace:
                conn.execute(
                    f"DELETE FROM {self.table} WHERE doc_id = ANY(?)",
                    [sorted({row[0] for row in rows})],
                )
            try:
                conn.execute(
                    f"INSERT INTO {self.table} (doc_id, chunk_no, title, content, embedding, "
                    "data_class, attributes, expires_at, created_at) "
                    "SELECT m.doc_id, m.chunk_no, m.title, m.content, e.embedding, "
                    "m.data_class, m.attributes, m.expires_at, m.created_at FROM ("
                    " SELECT unnest(range(?)) AS row_no, unnest(?::VARCHAR[]) AS doc_id,"
                    " unnest(?::INTEGER[]) AS chunk_no, unnest(?::VARCHAR[]) AS title,"
                    " unnest(?::VARCHAR[]) AS content, unnest(?::VARCHAR[]) AS data_class,"
                    " unnest(?::JSON[]) AS attributes, unnest(?::TIMESTAMPTZ[]) AS expires_at,"
                    " unnest(?::TIMESTAMPTZ[]) AS created_at"
                    ") m JOIN ("
                    f" SELECT row_no, list(v ORDER BY pos)::FLOAT[{d}] AS embedding"
                    f" FROM {view} GROUP BY row_no"
                    ") e USING (row_no) ORDER BY m.row_no",
                    [n, *columns],
                )
            except duckdb.ConstraintException as exc:
                raise DuplicateChunk(
                    f"{self.url}: a chunk of the batch is indexed already ({exc})",
                    hint="pass replace=True to index a document again",
                ) from exc

    def search(
        self,
        query_embedding: ArrayLike,
        *,
        scope: AccessScope,
        k: int = 5,
        tuning: SearchTuning | None = None,  # exact search has no knobs
    ) -> list[Hit]:
        """See :meth:`agentlab.rag.VectorIndex.search`; always exact."""
        query = check_query(query_embedding, dimension=self.dimension, k=k)
        where, params = self._where(scope)
        with self._transaction() as conn:
            if scope.allows_nothing:
                return []
            rows = conn.execute(
                "SELECT doc_id, chunk_no, title, content, data_class, attributes, "
                f"array_cosine_similarity(embedding, ?::FLOAT[{self.dimension}]) AS score "
                f"FROM {self.table} WHERE {where} "
                "ORDER BY score DESC, doc_id, chunk_no LIMIT ?",
                [query.tolist(), *params, k],
            ).fetchall()
        return [hit_from_row(row) for row in rows]

    def _where(self, scope: AccessScope) -> tuple[str, list[Any]]:
        """The scope as SQL: every value is a bound parameter, never pasted into the text."""
        clauses = ["data_class = ANY(?)", "(expires_at IS NULL OR expires_at > ?)"]
        params: list[Any] = [sorted(scope.data_classes), self._clock.now()]
        if scope.doc_ids is not None:
            clauses.append("doc_id = ANY(?)")
            params.append(sorted(scope.doc_ids))
        for key, allowed in sorted(scope.attributes.items()):
            clauses.append("list_has_any(CAST(attributes -> ? AS VARCHAR[]), ?::VARCHAR[])")
            params += [key, sorted(allowed)]
        return " AND ".join(clauses), params

    def delete_document(self, doc_id: str) -> int:
        """See :meth:`agentlab.rag.VectorIndex.delete_document`."""
        with self._transaction() as conn:
            row = conn.execute(
                f"DELETE FROM {self.table} WHERE doc_id = ? RETURNING 1", [doc_id]
            ).fetchall()
        return len(row)

    def purge_expired(self) -> int:
        """See :meth:`agentlab.rag.VectorIndex.purge_expired`."""
        with self._transaction() as conn:
            rows = conn.execute(
                f"DELETE FROM {self.table} WHERE expires_at <= ? RETURNING 1",
                [self._clock.now()],
            ).fetchall()
        return len(rows)

    def count(self) -> int:
        """See :meth:`agentlab.rag.VectorIndex.count`."""
        with self._transaction() as conn:
            row = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the file; later calls raise IndexClosed. Closing twice is harmless."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def _vectors_view(conn: duckdb.DuckDBPyConnection, array: NDArray[np.float32]) -> Iterator[str]:
    """The vectors as a view over numpy arrays, one row per (chunk, position, value).

    DuckDB scans numpy arrays in place; handing it Python lists of floats instead made a
    load of 100,000 x 384 vectors about ten times slower.
    """
    n, d = array.shape
    conn.register(
        VECTORS_VIEW,
        {
            "row_no": np.repeat(np.arange(n, dtype=np.int64), d),
            "pos": np.tile(np.arange(d, dtype=np.int32), n),
            "v": array.reshape(-1),
        },
    )
    try:
        yield VECTORS_VIEW
    finally:
        conn.unregister(VECTORS_VIEW)
