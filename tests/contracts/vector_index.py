"""The VectorIndex contract: every backend passes every test here.

Subclass :class:`VectorIndexContract` with one fixture:

* ``open_index`` -- ``open_index(dimension, embedder_name=None, clock=None)`` opens a new handle
  on the same backing data each time it is called (so a test can close an index and reopen
  it, as a restarted process would).

``property_examples`` sets how many hypothesis examples the no-leak property tries.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from agentlab.core.errors import DuplicateChunk, EmbeddingMismatch, IndexClosed
from agentlab.rag import AccessScope, Chunk, SearchTuning, VectorIndex

DIM = 16
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CLASSES = ("public", "internal", "confidential", "restricted", "finance")
DEPARTMENTS = ("it", "hr", "finance")
TAGS = ("vpn", "salary", "travel", "laptop")


class SettableClock:
    """A clock that stays where a test puts it."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class OpenIndex(Protocol):
    def __call__(
        self,
        dimension: int = DIM,
        *,
        embedder_name: str | None = None,
        clock: SettableClock | None = None,
    ) -> VectorIndex: ...


def chunk(
    doc_id: str,
    chunk_no: int = 0,
    *,
    data_class: str = "internal",
    content: str | None = None,
    attributes: dict[str, tuple[str, ...]] | None = None,
    expires_at: datetime | None = None,
) -> Chunk:
    return Chunk(
        doc_id=doc_id,
        chunk_no=chunk_no,
        title=f"Title of {doc_id}",
        content=content or f"{doc_id} part {chunk_no}",
        data_class=data_class,
        attributes=attributes or {},
        expires_at=expires_at,
    )


def unit(rng: np.random.Generator, n: int, dimension: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def random_corpus(seed: int, n: int = 80) -> tuple[list[Chunk], np.ndarray]:
    """Chunks of every class, with and without attributes, around a few directions."""
    rng = random.Random(seed)
    chunks = []
    for i in range(n):
        attributes: dict[str, tuple[str, ...]] = {}
        if rng.random() < 0.8:
            attributes["department"] = (rng.choice(DEPARTMENTS),)
        if rng.random() < 0.6:
            attributes["tags"] = tuple(sorted(rng.sample(TAGS, rng.randint(1, 3))))
        chunks.append(
            chunk(
                f"D{i // 3:03d}",
                i % 3,
                data_class=rng.choice(CLASSES),
                attributes=attributes,
            )
        )
    # Clustered, like real embeddings: a few centres with noise, so many near-ties exist.
    generator = np.random.default_rng(seed)
    centres = unit(generator, 5)
    vectors = centres[generator.integers(0, 5, size=n)] + 0.3 * unit(generator, n)
    return chunks, vectors.astype(np.float32)


def in_scope(scope: AccessScope, c: Chunk) -> bool:
    return scope.allows(doc_id=c.doc_id, data_class=c.data_class, attributes=c.attributes)


scopes = st.builds(
    AccessScope,
    data_classes=st.frozensets(st.sampled_from(CLASSES)),
    attributes=st.dictionaries(
        st.sampled_from(("department", "tags", "project")),
        st.frozensets(st.sampled_from(DEPARTMENTS + TAGS + ("none",)), max_size=3),
        max_size=2,
    ),
    doc_ids=st.none() | st.frozensets(st.sampled_from([f"D{i:03d}" for i in range(30)])),
)
queries = arrays(
    np.float32,
    DIM,
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32),
).filter(lambda v: bool(np.any(v)) and bool(np.isfinite(np.linalg.norm(v))))


class VectorIndexContract:
    """Subclass with an ``open_index`` fixture; every backend passes every test here."""

    property_examples: ClassVar[int] = 150
    """How many (query, scope, k) examples the no-leak property tries."""

    @pytest.fixture
    def index(self, open_index: OpenIndex) -> Iterator[VectorIndex]:
        with open_index() as index:  # type: ignore[attr-defined]
            yield index

    # --- the port --------------------------------------------------------------------------

    def test_the_index_is_a_vector_index_of_its_dimension(self, index: VectorIndex) -> None:
        assert isinstance(index, VectorIndex)
        assert index.dimension == DIM
        assert index.count() == 0

    def test_an_empty_index_finds_nothing(self, index: VectorIndex) -> None:
        found = index.search(np.ones(DIM), scope=AccessScope.of_classes(CLASSES), k=5)
        assert found == []

    def test_the_nearest_chunks_come_first_with_their_cosine_as_score(
        self, index: VectorIndex
    ) -> None:
        rng = np.random.default_rng(1)
        vectors = unit(rng, 30)
        index.add([chunk(f"D{i:02d}") for i in range(30)], vectors)
        query = vectors[7] + 0.05 * unit(rng, 1)[0]
        exact = SearchTuning(exact=True)
        hits = index.search(query, scope=AccessScope.of_classes({"internal"}), k=5, tuning=exact)
        expected = sorted(range(30), key=lambda i: -cosine(query, vectors[i]))[:5]
        assert [hit.doc_id for hit in hits] == [f"D{i:02d}" for i in expected]
        for hit, i in zip(hits, expected, strict=True):
            assert hit.score == pytest.approx(cosine(query, vectors[i]), abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    def test_a_stored_vector_finds_itself_first_with_any_tuning(self, index: VectorIndex) -> None:
        vectors = unit(np.random.default_rng(4), 60)
        index.add([chunk(f"D{i:02d}") for i in range(60)], vectors)
        scope = AccessScope.of_classes({"internal"})
        for tuning in (None, SearchTuning(probes=1, ef_search=1), SearchTuning(exact=True)):
            for i in (0, 17, 59):
                hits = index.search(vectors[i], scope=scope, k=3, tuning=tuning)
                assert hits[0].doc_id == f"D{i:02d}"
                assert hits[0].score == pytest.approx(1.0, abs=1e-5)
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    def test_a_hit_carries_what_a_prompt_needs_and_says_it_is_untrusted(
        self, index: VectorIndex
    ) -> None:
        text = "Größe: 100 € — «quoted» 日本語 'single' \"double\" \\ backslash; DROP TABLE x;"
        index.add(
            [
                chunk(
                    "KB-1",
                    2,
                    data_class="public",
                    content=text,
                    attributes={"department": ("it",), "tags": ("vpn", "remote-work")},
                )
            ],
            np.ones((1, DIM)),
        )
        [hit] = index.search(np.ones(DIM), scope=AccessScope.of_classes({"public"}), k=3)
        assert (hit.doc_id, hit.chunk_no, hit.title, hit.content) == (
            "KB-1",
            2,
            "Title of KB-1",
            text,
        )
        assert hit.data_class == "public"
        assert hit.attributes == {"department": ("it",), "tags": ("vpn", "remote-work")}
        assert hit.trust == "untrusted"
        assert hit.score == pytest.approx(1.0, abs=1e-5)

    def test_scale_does_not_matter_only_direction(self, index: VectorIndex) -> None:
        index.add([chunk("A"), chunk("B")], np.eye(DIM)[:2] * [[1000.0], [0.001]])
        hits = index.search(np.eye(DIM)[1] * 3, scope=AccessScope.of_classes({"internal"}), k=2)
        assert [h.doc_id for h in hits] == ["B", "A"]

    def test_k_bounds_the_number_of_hits(self, index: VectorIndex) -> None:
        index.add([chunk(f"D{i}") for i in range(10)], unit(np.random.default_rng(2), 10))
        scope = AccessScope.of_classes({"internal"})
        assert len(index.search(np.ones(DIM), scope=scope, k=3)) == 3
        assert len(index.search(np.ones(DIM), scope=scope, k=50)) == 10

    # --- access control --------------------------------------------------------------------

    def test_a_chunk_of_a_class_outside_the_scope_is_never_returned(
        self, index: VectorIndex
    ) -> None:
        # The confidential chunk is the exact match; the public one is far away.
        index.add(
            [chunk("SALARY", data_class="confidential"), chunk("WELCOME", data_class="public")],
            np.stack([np.eye(DIM)[0], np.eye(DIM)[1]]),
        )
        hits = index.search(np.eye(DIM)[0], scope=AccessScope.of_classes({"public"}), k=10)
        assert [h.doc_id for h in hits] == ["WELCOME"]
        cleared = index.search(
            np.eye(DIM)[0], scope=AccessScope.of_classes({"public", "confidential"}), k=10
        )
        assert [h.doc_id for h in cleared] == ["SALARY", "WELCOME"]

    def test_a_scope_that_allows_nothing_finds_nothing(self, index: VectorIndex) -> None:
        index.add(
            [chunk("A", data_class=c, chunk_no=i) for i, c in enumerate(CLASSES)],
            np.ones((len(CLASSES), DIM)),
        )
        for scope in (
            AccessScope.nothing(),
            AccessScope(data_classes=frozenset(CLASSES), attributes={"department": frozenset()}),
            AccessScope(data_classes=frozenset(CLASSES), doc_ids=frozenset()),
        ):
            assert index.search(np.ones(DIM), scope=scope, k=10) == []

    def test_attribute_rules_need_one_allowed_value_and_refuse_a_missing_attribute(
        self, index: VectorIndex
    ) -> None:
        index.add(
            [
                chunk("IT", attributes={"department": ("it",), "tags": ("vpn",)}),
                chunk("HR", attributes={"department": ("hr",), "tags": ("salary", "vpn")}),
                chunk("NONE"),
            ],
            np.ones((3, DIM)),
        )

        def found(**attributes: set[str]) -> set[str]:
            scope = AccessScope(
                data_classes=frozenset({"internal"}),
                attributes={key: frozenset(values) for key, values in attributes.items()},
            )
            return {h.doc_id for h in index.search(np.ones(DIM), scope=scope, k=10)}

        assert found() == {"IT", "HR", "NONE"}
        assert found(department={"it"}) == {"IT"}
        assert found(department={"it", "hr"}) == {"IT", "HR"}
        assert found(tags={"vpn"}) == {"IT", "HR"}
        assert found(tags={"salary", "travel"}) == {"HR"}
        assert found(department={"it"}, tags={"salary"}) == set()
        assert found(project={"heron"}) == set()

    def test_a_doc_id_rule_keeps_to_its_documents(self, index: VectorIndex) -> None:
        index.add([chunk("A"), chunk("B"), chunk("C")], np.ones((3, DIM)))
        scope = AccessScope(data_classes=frozenset({"internal"}), doc_ids=frozenset({"A", "C"}))
        assert {h.doc_id for h in index.search(np.ones(DIM), scope=scope, k=10)} == {"A", "C"}

    def test_a_filter_that_rejects_the_nearest_rows_still_fills_k(self, index: VectorIndex) -> None:
        # 300 internal chunks sit right at the query; 5 public ones far away. An approximate
        # index that filtered after its first probes would return no public chunk at all.
        rng = np.random.default_rng(3)
        near = np.eye(DIM)[0] + 0.05 * unit(rng, 300)
        far = -np.eye(DIM)[0] + 0.5 * unit(rng, 5)
        index.add(
            [chunk(f"N{i:03d}") for i in range(300)]
            + [chunk(f"P{i}", data_class="public") for i in range(5)],
            np.vstack([near, far]),
        )
        hits = index.search(np.eye(DIM)[0], scope=AccessScope.of_classes({"public"}), k=5)
        assert sorted(h.doc_id for h in hits) == [f"P{i}" for i in range(5)]

    def test_no_chunk_outside_the_scope_is_returned_whatever_the_query(
        self, open_index: OpenIndex
    ) -> None:
        chunks, vectors = random_corpus(seed=7)
        with open_index() as index:  # type: ignore[attr-defined]
            index.add(chunks, vectors)

            @settings(
                max_examples=self.property_examples,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                database=None,
            )
            @given(
                query=queries | st.sampled_from(list(vectors)),
                scope=scopes,
                k=st.integers(1, 40),
                tuning=st.sampled_from(
                    [
                        None,
                        SearchTuning(probes=1, ef_search=1),
                        SearchTuning(probes=1, ef_search=10, iterative_scan=False),
                        SearchTuning(exact=True),
                    ]
                ),
            )
            def check(
                query: np.ndarray, scope: AccessScope, k: int, tuning: SearchTuning | None
            ) -> None:
                hits = index.search(query, scope=scope, k=k, tuning=tuning)
                allowed = [c for c in chunks if in_scope(scope, c)]
                by_key = {(c.doc_id, c.chunk_no): c for c in chunks}
                for hit in hits:
                    original = by_key[(hit.doc_id, hit.chunk_no)]
                    assert in_scope(scope, original), f"leaked {hit.doc_id} ({hit.data_class})"
                    assert hit.data_class == original.data_class
                assert len(hits) <= min(k, len(allowed))
                assert len({(h.doc_id, h.chunk_no) for h in hits}) == len(hits)
                if tuning is None or tuning.iterative_scan:
                    assert len(hits) == min(k, len(allowed))  # the filter never starves k

            check()

    def test_exact_search_matches_brute_force_within_any_scope(self, index: VectorIndex) -> None:
        chunks, vectors = random_corpus(seed=11)
        index.add(chunks, vectors)
        rng = random.Random(5)
        for _ in range(20):
            scope = AccessScope.of_classes(rng.sample(CLASSES, rng.randint(1, 3)))
            query = vectors[rng.randrange(len(vectors))] + np.float32(0.1)
            hits = index.search(query, scope=scope, k=7, tuning=SearchTuning(exact=True))
            ranked = sorted(
                (c for c in chunks if in_scope(scope, c)),
                key=lambda c: -cosine(query, vectors[chunks.index(c)]),
            )[:7]
            assert [h.score for h in hits] == pytest.approx(
                [cosine(query, vectors[chunks.index(c)]) for c in ranked], abs=1e-4
            )

    # --- writes ----------------------------------------------------------------------------

    def test_a_duplicate_chunk_refuses_the_whole_batch(self, index: VectorIndex) -> None:
        index.add([chunk("A", 0)], np.ones((1, DIM)))
        with pytest.raises(DuplicateChunk):
            index.add([chunk("B", 0), chunk("A", 0)], np.ones((2, DIM)))
        with pytest.raises(DuplicateChunk):
            index.add([chunk("C", 0), chunk("C", 0)], np.ones((2, DIM)))
        assert index.count() == 1

    def test_replace_swaps_a_documents_chunks_in_one_step(self, index: VectorIndex) -> None:
        index.add([chunk("A", n, content=f"old {n}") for n in range(3)], np.ones((3, DIM)))
        index.add([chunk("B", 0)], np.ones((1, DIM)))
        index.add(
            [chunk("A", 0, content="new 0", data_class="public")], np.ones((1, DIM)), replace=True
        )
        hits = index.search(np.ones(DIM), scope=AccessScope.of_classes(CLASSES), k=10)
        assert sorted((h.doc_id, h.chunk_no, h.content) for h in hits) == [
            ("A", 0, "new 0"),
            ("B", 0, "B part 0"),
        ]

    def test_delete_document_removes_all_its_chunks(self, index: VectorIndex) -> None:
        index.add([chunk("A", n) for n in range(3)] + [chunk("B", 0)], np.ones((4, DIM)))
        assert index.delete_document("A") == 3
        assert index.delete_document("A") == 0
        assert index.count() == 1

    def test_an_empty_batch_is_a_no_op(self, index: VectorIndex) -> None:
        index.add([], np.zeros((0, DIM)))
        assert index.count() == 0

    @pytest.mark.parametrize(
        ("embeddings", "error"),
        [
            (np.ones((1, DIM + 1)), EmbeddingMismatch),
            (np.ones((2, DIM)), EmbeddingMismatch),
            (np.ones(DIM), EmbeddingMismatch),
            (np.zeros((1, DIM)), ValueError),
            (np.full((1, DIM), np.nan), ValueError),
            (np.full((1, DIM), np.inf), ValueError),
        ],
        ids=["too-long", "too-many-rows", "one-dimensional", "zero", "nan", "inf"],
    )
    def test_embeddings_that_do_not_fit_are_refused(
        self, index: VectorIndex, embeddings: np.ndarray, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            index.add([chunk("A")], embeddings)
        assert index.count() == 0

    @pytest.mark.parametrize(
        ("query", "k", "error"),
        [
            (np.ones(DIM - 1), 3, EmbeddingMismatch),
            (np.ones((2, DIM)), 3, EmbeddingMismatch),
            (np.zeros(DIM), 3, ValueError),
            (np.full(DIM, np.nan), 3, ValueError),
            (np.ones(DIM), 0, ValueError),
        ],
        ids=["too-short", "two-queries", "zero", "nan", "k-zero"],
    )
    def test_a_query_that_does_not_fit_is_refused(
        self, index: VectorIndex, query: np.ndarray, k: int, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            index.search(query, scope=AccessScope.of_classes({"internal"}), k=k)

    # --- retention -------------------------------------------------------------------------

    def test_an_expired_chunk_is_never_returned_and_is_purged(self, open_index: OpenIndex) -> None:
        clock = SettableClock(T0)
        with open_index(clock=clock) as index:  # type: ignore[attr-defined]
            index.add(
                [
                    chunk("KEEP"),
                    chunk("SOON", expires_at=T0 + timedelta(days=1)),
                    chunk("LATER", expires_at=T0 + timedelta(days=30)),
                ],
                np.ones((3, DIM)),
            )
            scope = AccessScope.of_classes({"internal"})

            def found() -> set[str]:
                return {h.doc_id for h in index.search(np.ones(DIM), scope=scope, k=10)}

            assert found() == {"KEEP", "SOON", "LATER"}
            assert index.purge_expired() == 0
            clock.at = T0 + timedelta(days=1)  # expires_at is the first moment it is gone
            assert found() == {"KEEP", "LATER"}
            assert index.count() == 3
            assert index.purge_expired() == 1
            assert index.count() == 2
            clock.at = T0 + timedelta(days=365)
            assert index.purge_expired() == 1
            assert found() == {"KEEP"}

    # --- lifecycle -------------------------------------------------------------------------

    def test_what_was_added_is_there_after_reopening(self, open_index: OpenIndex) -> None:
        with open_index(embedder_name="hashing-v1-16") as index:  # type: ignore[attr-defined]
            index.add([chunk("A")], np.ones((1, DIM)))
        with open_index() as index:  # type: ignore[attr-defined]
            assert index.count() == 1
            assert index.embedder_name == "hashing-v1-16"  # bound on first use

    def test_another_dimension_or_embedder_is_refused(self, open_index: OpenIndex) -> None:
        open_index(embedder_name="hashing-v1-16").close()
        with pytest.raises(EmbeddingMismatch, match="16-d"):
            open_index(DIM * 2)
        with pytest.raises(EmbeddingMismatch, match="hashing-v1-16"):
            open_index(embedder_name="sentence:all-MiniLM-L6-v2")

    def test_a_closed_index_refuses_every_call(self, index: VectorIndex) -> None:
        index.close()
        index.close()  # twice is harmless
        calls: list[Callable[[], object]] = [
            lambda: index.add([chunk("A")], np.ones((1, DIM))),
            lambda: index.search(np.ones(DIM), scope=AccessScope.of_classes({"internal"})),
            lambda: index.search(np.ones(DIM), scope=AccessScope.nothing()),
            lambda: index.delete_document("A"),
            index.purge_expired,
            index.count,
        ]
        for call in calls:
            with pytest.raises(IndexClosed):
                call()
