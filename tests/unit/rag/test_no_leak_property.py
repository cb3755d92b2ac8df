from __future__ import annotations

import pytest

from agentlab.adapters import open_vector_index
from agentlab.rag import VectorIndex
from tests.contracts.retrieval import RetrieverLeakContract
from tests.contracts.vector_index import OpenIndex


class TestNoLeakOnDuckDB(RetrieverLeakContract):
    @pytest.fixture
    def open_index(self) -> OpenIndex:
        def open_(dimension: int, *, embedder_name: str | None = None, **_: object) -> VectorIndex:
            return open_vector_index("memory://", dimension, embedder_name=embedder_name)

        return open_  # type: ignore[return-value]
