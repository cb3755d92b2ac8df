"""What the DuckDB and pgvector indexes share: names, the meta rows, rows in and hits out.

Each index keeps three rows in ``agentlab_meta`` (the table the event store uses for its
schema version), keyed by its table name: its schema version, its dimension, and the
embedder it was built with. Opening an index with another dimension or embedder is refused
(EmbeddingMismatch): vectors of two embedders cannot be compared, even at the same dimension.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from agentlab.core.errors import ConfigError, DuplicateChunk, EmbeddingMismatch, SchemaTooNew
from agentlab.rag.documents import Chunk
from agentlab.rag.index import Hit, check_embeddings

TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
MAX_DIMENSION = 2000
"""pgvector indexes ``vector`` columns of up to 2,000 dimensions; DuckDB keeps the same limit
so that an index can move from one backend to the other."""

ChunkRow = tuple[str, int, str, str, str, dict[str, list[str]], datetime | None, datetime]
"""(doc_id, chunk_no, title, content, data_class, attributes, expires_at, created_at)."""


def check_table_and_dimension(table: str, dimension: int) -> None:
    """Refuse a table name that is not a plain identifier, or an unusable dimension."""
    if not TABLE_NAME.match(table):
        raise ConfigError(
            f"table name {table!r} is not allowed",
            hint="use lower-case letters, digits and _ (at most 48), e.g. rag_chunks",
        )
    if not 1 <= dimension <= MAX_DIMENSION:
        raise ConfigError(
            f"dimension {dimension} is outside 1..{MAX_DIMENSION}",
            hint="pgvector indexes vectors of up to 2,000 dimensions",
        )


def settle_meta(
    conn: Any,
    *,
    table: str,
    dimension: int,
    embedder_name: str | None,
    schema_version: int,
    url: str,
    sql: Callable[[str], str] = lambda statement: statement,
) -> tuple[bool, str | None]:
    """Check (or record) the index's version, dimension and embedder, in the caller's transaction.

    Returns:
        (whether the table must be created, the embedder the index is bound to).

    Raises:
        EmbeddingMismatch: the index has another dimension or embedder.
        SchemaTooNew: the index was made by a newer agentlab.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS agentlab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    )
    prefix = f"{table}."
    meta = {
        key.removeprefix(prefix): value
        for key, value in conn.execute("SELECT key, value FROM agentlab_meta").fetchall()
        if key.startswith(prefix)
    }
    version = int(meta.get("schema_version", 0))
    if version > schema_version:
        raise SchemaTooNew(
            f"{url}: {table} has schema version {version}, but this agentlab knows up to "
            f"{schema_version}",
            hint="upgrade agentlab (pip install -U agentlab), or open another table",
        )
    if "dimension" in meta and int(meta["dimension"]) != dimension:
        raise EmbeddingMismatch(
            f"{url}: {table} holds {meta['dimension']}-d vectors, not {dimension}-d",
            hint="open it with its dimension and embedder, or index into another table",
        )
    bound = meta.get("embedder")
    if bound is not None and embedder_name is not None and bound != embedder_name:
        raise EmbeddingMismatch(
            f"{url}: {table} was built with embedder {bound}, not {embedder_name}",
            hint="use that embedder, or index the documents again into another table",
        )
    wanted = {"schema_version": str(schema_version), "dimension": str(dimension)}
    if bound is None and embedder_name is not None:
        wanted["embedder"] = bound = embedder_name
    for key, value in wanted.items():
        if meta.get(key) != value:
            conn.execute(
                sql(
                    "INSERT INTO agentlab_meta VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                ),
                [f"{table}.{key}", value],
            )
    return version == 0, bound


def prepare_rows(
    chunks: Sequence[Chunk], embeddings: ArrayLike, *, dimension: int, now: datetime
) -> tuple[list[ChunkRow], NDArray[np.float32]]:
    """Rows to insert and their checked embeddings; refuses a batch that repeats a chunk."""
    array = check_embeddings(embeddings, rows=len(chunks), dimension=dimension)
    seen: set[tuple[str, int]] = set()
    rows: list[ChunkRow] = []
    for chunk in chunks:
        if not isinstance(chunk, Chunk):
            raise TypeError(f"expected Chunk, got {type(chunk).__name__}")
        key = (chunk.doc_id, chunk.chunk_no)
        if key in seen:
            raise DuplicateChunk(
                f"{chunk.doc_id}#{chunk.chunk_no} appears twice in one batch",
                hint="number a document's chunks 0, 1, 2, ... (chunk_document does)",
            )
        seen.add(key)
        rows.append(
            (
                chunk.doc_id,
                chunk.chunk_no,
                chunk.title,
                chunk.content,
                chunk.data_class,
                {key: list(values) for key, values in sorted(chunk.attributes.items())},
                chunk.expires_at,
                now,
            )
        )
    return rows, array


def hit_from_row(row: Sequence[Any]) -> Hit:
    """A Hit from (doc_id, chunk_no, title, content, data_class, attributes, score).

    Attributes come as JSON text from DuckDB and as a dict from psycopg.
    """
    doc_id, chunk_no, title, content, data_class, attributes, score = row
    values = json.loads(attributes) if isinstance(attributes, str) else attributes
    return Hit(
        doc_id=doc_id,
        chunk_no=chunk_no,
        title=title,
        content=content,
        data_class=data_class,
        attributes={key: tuple(value) for key, value in values.items()},
        score=float(score),
    )
