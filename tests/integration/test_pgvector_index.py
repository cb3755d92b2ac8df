from __future__ import annotations

from typing import ClassVar

import numpy as np
import psycopg
import pytest

from agentlab.adapters import open_vector_index
from agentlab.adapters.pgvector_index import PgvectorIndex
from agentlab.core.errors import BackendError
from agentlab.rag import AccessScope, SearchTuning, VectorIndex
from tests.contracts.vector_index import (
    DIM,
    OpenIndex,
    SettableClock,
    VectorIndexContract,
    chunk,
    unit,
)


class PgvectorContract(VectorIndexContract):
    method: ClassVar[str]
    force_index_scan: ClassVar[bool] = True
    """Tables in tests are small enough that the planner would scan them in full and sort:
    exact, and not what production runs. Turning sequential scans off for the test database
    makes every search go through the approximate index, iterative scans and all."""
    property_examples = 40

    @pytest.fixture
    def open_index(self, pg_url: str) -> OpenIndex:
        if self.force_index_scan:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                name = conn.info.dbname
                conn.execute(f'ALTER DATABASE "{name}" SET enable_seqscan = off')

        def open_(
            dimension: int = DIM,
            *,
            embedder_name: str | None = None,
            clock: SettableClock | None = None,
        ) -> VectorIndex:
            return open_vector_index(
                pg_url, dimension, embedder_name=embedder_name, clock=clock, method=self.method
            )

        return open_

    def test_the_table_has_the_approximate_index_asked_for(self, index: VectorIndex) -> None:
        assert isinstance(index, PgvectorIndex)
        assert index.method == self.method


class TestPgvectorIvfflat(PgvectorContract):
    method = "ivfflat"


class TestPgvectorHnsw(PgvectorContract):
    method = "hnsw"


class TestPgvectorAsPlanned(PgvectorContract):
    """As the planner chooses: on tables this small, a sequential scan."""

    method = "ivfflat"
    force_index_scan = False


def _plan(pg_url: str, sql: str, *settings: str) -> str:
    with psycopg.connect(pg_url) as conn:
        for setting in settings:
            conn.execute(setting)
        return "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql).fetchall())


def test_the_article_table_and_its_ivfflat_index_are_created(pg_url: str) -> None:
    PgvectorIndex(pg_url, DIM).close()
    with psycopg.connect(pg_url) as conn:
        columns = dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'rag_chunks'::regclass AND attnum > 0"
            ).fetchall()
        )
        [definition] = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'rag_chunks_ivfflat'"
        ).fetchone() or [None]
    assert columns["embedding"] == f"vector({DIM})"
    assert columns["attributes"] == "jsonb"
    assert columns["data_class"] == "text"
    assert columns["created_at"] == "timestamp with time zone"
    assert definition is not None
    assert "USING ivfflat (embedding vector_cosine_ops) WITH (lists='200')" in definition


def test_build_index_swaps_ivfflat_for_hnsw_over_the_loaded_rows(pg_url: str) -> None:
    with PgvectorIndex(pg_url, DIM, method="none") as index:
        assert index.method == "none"
        index.add([chunk(f"D{i}") for i in range(50)], unit(np.random.default_rng(1), 50))
        index.build_index("ivfflat", lists=5)
        assert index.method == "ivfflat"
        index.build_index("hnsw", m=8, ef_construction=32, maintenance_work_mem="64MB")
        assert index.method == "hnsw"
        hits = index.search(
            np.ones(DIM),
            scope=AccessScope.of_classes({"internal"}),
            k=3,
            tuning=SearchTuning(ef_search=10),
        )
        assert len(hits) == 3


def test_without_iterative_scan_a_filter_starves_the_approximate_index(pg_url: str) -> None:
    """Why the adapter turns iterative scans on: the same query, with and without them."""
    rng = np.random.default_rng(3)
    with PgvectorIndex(pg_url, DIM, method="none") as index:
        near = np.eye(DIM)[0] + 0.05 * unit(rng, 2000)
        far = -np.eye(DIM)[0] + 0.5 * unit(rng, 5)
        index.add(
            [chunk(f"N{i:04d}") for i in range(2000)]
            + [chunk(f"P{i}", data_class="public") for i in range(5)],
            np.vstack([near, far]),
        )
        index.build_index("ivfflat", lists=20)
    query = "[" + ",".join(["1"] + ["0"] * (DIM - 1)) + "]"
    sql = (
        "SELECT doc_id FROM rag_chunks WHERE data_class = 'public' "
        f"ORDER BY embedding <=> '{query}' LIMIT 5"
    )
    force_index = ("SET enable_seqscan = off", "SET ivfflat.probes = 1")
    assert "Index Scan using rag_chunks_ivfflat" in _plan(pg_url, sql, *force_index)
    with psycopg.connect(pg_url) as conn:
        for setting in force_index:
            conn.execute(setting)
        starved = conn.execute(sql).fetchall()
        conn.execute("SET ivfflat.iterative_scan = relaxed_order")
        filled = conn.execute(sql).fetchall()
    assert len(starved) < 5  # the one probed list holds the internal chunks only
    assert sorted(row[0] for row in filled) == [f"P{i}" for i in range(5)]


def test_tuning_applies_to_one_query_only(pg_url: str) -> None:
    with PgvectorIndex(pg_url, DIM, probes=10) as index:
        index.add([chunk("A")], np.ones((1, DIM)))
        index.search(
            np.ones(DIM), scope=AccessScope.of_classes({"internal"}), tuning=SearchTuning(probes=77)
        )
        assert index._pool is not None
        with index._pool.connection() as conn:
            assert conn.execute("SHOW ivfflat.probes").fetchone() == ("1",)  # pgvector's default


def test_an_unreachable_database_is_a_backend_error_without_the_password(tmp_path) -> None:
    url = f"postgresql://agent:s3cret@/nowhere?host={tmp_path}"
    with pytest.raises(BackendError) as caught:
        PgvectorIndex(url, DIM)
    assert "s3cret" not in str(caught.value)
