"""Embedders: text in, unit-length float32 vectors out, behind one small Protocol.

The default, :class:`HashingEmbedder`, needs no download and no network: it hashes word
unigrams and bigrams into a fixed number of buckets (feature hashing), with a hash that is the
same in every process and on every machine (BLAKE2b, never Python's salted ``hash()``), so an
index built today is searched correctly tomorrow. It captures word overlap, not meaning; the
sentence-embedding model (``agentlab.adapters.sentence_embedder``, extra ``embeddings``) and
OpenAI-compatible embeddings (``agentlab.adapters.openai_embedder``) do better on paraphrases.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

_WORD = re.compile(r"\w+")
# Function words carry no topic, and with no corpus statistics (no IDF) to discount them they
# would dominate short queries: "my password and my account" would match any text about "my".
STOPWORDS = frozenset(
    """
    a about after all also am an and any are as at be been before being but by can could
    did do does doing for from had has have having he her here hers him his how i if in
    into is it its just may me might must my no nor not of off on once only or other our
    ours out over own same she should so some such than that the their theirs them then
    there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
_EMPTY_FEATURE = "\x00empty"  # an empty text still gets a direction, so cosine is defined


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors whose cosine similarity says how alike the texts are."""

    name: str
    """Names the model and its settings; an index refuses vectors of another embedder."""
    dimension: int
    """Length of every vector."""

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One L2-normalised row per text: a float32 array of shape ``(len(texts), dimension)``."""
        ...


class HashingEmbedder:
    """Feature hashing of word unigrams and bigrams; deterministic, offline, fast.

    Function words (``STOPWORDS``: "the", "my", "and", ...) are dropped first. Each feature
    (``w:vpn``, ``b:reset password``) is hashed with BLAKE2b to a bucket and a sign; a text's
    vector is the sum over its features, unigrams weighted 1 and bigrams ``bigram_weight``,
    with sub-linear term frequency, L2-normalised. Text is NFKC-normalised and case-folded
    first, so ``VPN`` and ``ＶＰＮ`` are the same word.

    Args:
        dimension: Number of buckets. 384 matches all-MiniLM-L6-v2, so a table can switch
            embedders without a schema change (the index still refuses mixed vectors).
        bigram_weight: Weight of a bigram relative to a unigram; 0 for unigrams only.
    """

    def __init__(self, dimension: int = 384, *, bigram_weight: float = 0.5) -> None:
        if dimension < 8:
            raise ValueError(f"dimension must be at least 8, not {dimension}")
        if not 0 <= bigram_weight <= 1:
            raise ValueError(f"bigram_weight must be within 0..1, not {bigram_weight}")
        self.dimension = dimension
        self.bigram_weight = bigram_weight
        suffix = "" if bigram_weight == 0.5 else f"-b{bigram_weight:g}"
        self.name = f"hashing-v1-{dimension}{suffix}"

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """See :meth:`Embedder.embed`; an empty text gets a fixed vector of its own."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._embed_one(text)
        return out

    def _features(self, text: str) -> dict[str, float]:
        words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
        content = [word for word in words if word not in STOPWORDS]
        words = content or words  # a text of function words only still gets its own vector
        counts: dict[str, float] = {}
        for word in words:
            counts[f"w:{word}"] = counts.get(f"w:{word}", 0.0) + 1.0
        if self.bigram_weight:
            for first, second in itertools.pairwise(words):
                feature = f"b:{first} {second}"
                counts[feature] = counts.get(feature, 0.0) + 1.0
        if not counts:
            return {_EMPTY_FEATURE: 1.0}
        return {
            feature: (1.0 + math.log(count)) * (self.bigram_weight if feature[0] == "b" else 1.0)
            for feature, count in counts.items()
        }

    def _embed_one(self, text: str) -> NDArray[np.float32]:
        features = self._features(text)
        vector = np.zeros(self.dimension, dtype=np.float64)
        for feature, weight in features.items():
            bucket, sign = _bucket(feature, self.dimension)
            vector[bucket] += sign * weight
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # signs cancelled out exactly; drop them so the vector has a direction
            for feature, weight in features.items():
                vector[_bucket(feature, self.dimension)[0]] += weight
            norm = float(np.linalg.norm(vector))
        return (vector / norm).astype(np.float32)


@lru_cache(maxsize=1 << 16)
def _bucket(feature: str, dimension: int) -> tuple[int, int]:
    """The bucket and sign of a feature: stable across processes, Python versions, machines."""
    digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
    return digest % dimension, 1 if digest >> 63 else -1
