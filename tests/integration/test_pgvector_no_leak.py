from __future__ import annotations

from typing import ClassVar

import psycopg
import pytest

from agentlab.adapters import open_vector_index
from agentlab.rag import VectorIndex
from tests.contracts.retrieval import RetrieverLeakContract
from tests.contracts.vector_index import OpenIndex


class PgvectorLeakContract(RetrieverLeakContract):
    method: ClassVar[str]
    leak_examples = 100

    @pytest.fixture
    def open_index(self, pg_url: str) -> OpenIndex:
        # Through the approximate index, not the sequential scan a table this small would get.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET enable_seqscan = off')

        def open_(dimension: int, *, embedder_name: str | None = None, **_: object) -> VectorIndex:
            return open_vector_index(
                pg_url, dimension, embedder_name=embedder_name, method=self.method
            )

        return open_  # type: ignore[return-value]


class TestNoLeakOnIvfflat(PgvectorLeakContract):
    method = "ivfflat"


class TestNoLeakOnHnsw(PgvectorLeakContract):
    method = "hnsw"
