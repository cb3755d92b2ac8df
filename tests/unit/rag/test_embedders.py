from __future__ import annotations

import numpy as np
import pytest

from agentlab.rag import Embedder, HashingEmbedder
from agentlab.rag.embedders import _bucket


def test_vectors_are_float32_unit_rows_of_the_dimension() -> None:
    embedder = HashingEmbedder()
    vectors = embedder.embed(["reset my password", "VPN drops every hour", ""])
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dimension) == ("hashing-v1-384", 384)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-6)


def test_the_same_text_gives_the_same_vector_in_every_process() -> None:
    # Pinned buckets and signs: Python's salted hash() would move them with PYTHONHASHSEED,
    # and an index built in one process would be searched with another's vectors.
    assert _bucket("w:vpn", 384) == (115, -1)
    assert _bucket("w:password", 384) == (372, 1)
    vector = HashingEmbedder().embed(["reset password"])[0]
    buckets = np.nonzero(vector)[0]
    assert buckets.tolist() == [1, 69, 372]  # "b:reset password", "w:reset", "w:password"
    assert vector[buckets] == pytest.approx([-1 / 3, -2 / 3, 2 / 3], abs=1e-6)


def test_case_and_unicode_width_do_not_matter() -> None:
    embedder = HashingEmbedder()
    a, b, c = embedder.embed(["VPN Password", "vpn password", "ＶＰＮ　ｐａｓｓｗｏｒｄ"])
    assert a @ b == pytest.approx(1.0)
    assert a @ c == pytest.approx(1.0)


def test_texts_that_share_words_are_closer_than_texts_that_do_not() -> None:
    embedder = HashingEmbedder()
    query, near, far = embedder.embed(
        ["reset a forgotten password", "how to reset your password", "hotel limits abroad"]
    )
    assert query @ near > 0.3
    assert query @ near > query @ far


def test_word_order_counts_through_bigrams_unless_they_are_off() -> None:
    a, b = HashingEmbedder().embed(["purchase order approval", "approval order purchase"])
    assert a @ b < 0.99
    a, b = HashingEmbedder(bigram_weight=0).embed(
        ["purchase order approval", "approval order purchase"]
    )
    assert a @ b == pytest.approx(1.0)
    assert HashingEmbedder(bigram_weight=0).name == "hashing-v1-384-b0"


def test_an_empty_text_still_has_a_direction() -> None:
    vectors = HashingEmbedder(16).embed(["", "   ", "!!!"])
    assert np.all(np.linalg.norm(vectors, axis=1) > 0.99)


def test_a_single_string_is_refused_rather_than_embedded_letter_by_letter() -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        HashingEmbedder().embed("hello")  # type: ignore[arg-type]


def test_no_texts_give_an_empty_array() -> None:
    assert HashingEmbedder(32).embed([]).shape == (0, 32)


@pytest.mark.parametrize("kwargs", [{"dimension": 4}, {"bigram_weight": 2.0}])
def test_settings_out_of_range_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        HashingEmbedder(**kwargs)  # type: ignore[arg-type]
