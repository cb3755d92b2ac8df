"""The VectorIndex port: chunks and their embeddings, searched by cosine within a scope.

Backends: ``agentlab.adapters.duckdb_vector_index`` (exact cosine, the embedded default) and
``agentlab.adapters.pgvector_index`` (PostgreSQL + pgvector, ivfflat or hnsw). Both pass
``tests/contracts/vector_index.py``; open either with ``agentlab.adapters.open_vector_index``.

The index is the long-term memory tier (documents): each chunk may carry an ``expires_at``.
An expired chunk is never returned, and :meth:`VectorIndex.purge_expired` deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from agentlab.core.errors import EmbeddingMismatch
from agentlab.rag.access import AccessScope
from agentlab.rag.documents import Chunk


class SearchTuning(BaseModel):
    """Per-query knobs of an approximate index; the exact DuckDB index ignores them."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    probes: int | None = Field(default=None, ge=1, le=32768)
    """ivfflat: lists to scan (``ivfflat.probes``). More is slower and finds more; the
    article starts at 10. None: the index's default."""
    ef_search: int | None = Field(default=None, ge=1, le=1000)
    """hnsw: size of the candidate list (``hnsw.ef_search``, pgvector's default 40). None:
    the index's default."""
    iterative_scan: bool = True
    """Keep scanning the approximate index until ``k`` rows pass the scope's filter
    (pgvector 0.8's ``*.iterative_scan = relaxed_order``). Without it, a filter that rejects
    most of the nearest rows returns fewer than ``k`` hits, or none."""
    exact: bool = False
    """Ignore the approximate index and compare against every row (slow; for checking recall)."""


class Hit(BaseModel):
    """A retrieved chunk. Its text is untrusted data for a prompt, never instructions."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    doc_id: str
    chunk_no: int
    title: str
    content: str
    data_class: str
    attributes: dict[str, tuple[str, ...]]
    score: float
    """Cosine similarity to the query, -1 to 1; higher is closer."""
    trust: Literal["untrusted"] = "untrusted"
    """Retrieved text is data: it may carry injected instructions, and must be quoted as such
    (see :func:`agentlab.rag.render_hits_for_prompt`)."""


@runtime_checkable
class VectorIndex(Protocol):
    """Chunks with embeddings, searched by cosine similarity, filtered by an AccessScope.

    Every backend passes ``tests/contracts/vector_index.py``. The scope is applied in the
    query itself: a chunk outside it is never read out of the backend.
    """

    url: str
    """Where the index lives, with any password removed."""
    dimension: int
    """Length of every embedding in the index."""
    embedder_name: str | None
    """The embedder whose vectors the index holds, when it was opened with one."""

    def add(self, chunks: Sequence[Chunk], embeddings: ArrayLike, *, replace: bool = False) -> None:
        """Add chunks with their embeddings (one row each), all or none.

        Args:
            chunks: The chunks; (doc_id, chunk_no) must be new unless ``replace`` is set.
            embeddings: ``(len(chunks), dimension)`` finite, non-zero vectors.
            replace: First delete every chunk of the documents in ``chunks``, in the same
                transaction, so that re-indexing a document never shows half of it.

        Raises:
            DuplicateChunk: a (doc_id, chunk_no) is in the index already.
            EmbeddingMismatch: the embeddings are not ``(len(chunks), dimension)``.
            ValueError: an embedding is all zeros, or holds NaN or infinity.
        """
        ...

    def search(
        self,
        query_embedding: ArrayLike,
        *,
        scope: AccessScope,
        k: int = 5,
        tuning: SearchTuning | None = None,
    ) -> list[Hit]:
        """The ``k`` chunks in ``scope`` closest to the query, best first.

        Expired chunks are left out. A scope that allows nothing returns ``[]``.

        Raises:
            EmbeddingMismatch: the query is not a ``dimension``-long vector.
            ValueError: the query is all zeros, or holds NaN or infinity; or ``k < 1``.
        """
        ...

    def delete_document(self, doc_id: str) -> int:
        """Delete every chunk of a document; returns how many there were."""
        ...

    def purge_expired(self) -> int:
        """Delete every chunk whose ``expires_at`` has passed; returns how many."""
        ...

    def count(self) -> int:
        """How many chunks the index holds (expired ones until they are purged)."""
        ...

    def close(self) -> None:
        """Release the index; later calls raise :class:`~agentlab.core.errors.IndexClosed`."""
        ...


def check_embeddings(embeddings: ArrayLike, *, rows: int, dimension: int) -> NDArray[np.float32]:
    """``embeddings`` as a float32 ``(rows, dimension)`` array of finite, non-zero vectors.

    Raises:
        EmbeddingMismatch: wrong shape.
        ValueError: a row is all zeros (cosine is undefined) or holds NaN or infinity.
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape != (rows, dimension):
        raise EmbeddingMismatch(
            f"expected embeddings of shape ({rows}, {dimension}), got {array.shape}",
            hint="embed with the embedder the index was opened for, one row per chunk",
        )
    if not np.isfinite(array).all():
        raise ValueError("embeddings hold NaN or infinity")
    if rows and not np.any(array, axis=1).all():
        raise ValueError("an embedding is all zeros: cosine similarity is undefined for it")
    return array


def check_query(query_embedding: ArrayLike, *, dimension: int, k: int) -> NDArray[np.float32]:
    """The query as a float32 vector of length ``dimension``; see :func:`check_embeddings`."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    vector = np.asarray(query_embedding, dtype=np.float32)
    if vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]
    return check_embeddings(vector.reshape(1, -1), rows=1, dimension=dimension)[0]
