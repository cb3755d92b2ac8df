from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from agentlab.adapters import open_vector_index
from agentlab.adapters.duckdb_vector_index import DuckDBVectorIndex
from agentlab.core.errors import ConfigError, SchemaTooNew
from agentlab.rag import AccessScope, VectorIndex
from tests.contracts.vector_index import DIM, OpenIndex, SettableClock, VectorIndexContract, chunk


class TestDuckDBVectorIndex(VectorIndexContract):
    @pytest.fixture
    def open_index(self, tmp_path: Path) -> OpenIndex:
        path = tmp_path / "kb" / "index.duckdb"

        def open_(
            dimension: int = DIM,
            *,
            embedder_name: str | None = None,
            clock: SettableClock | None = None,
        ) -> VectorIndex:
            return open_vector_index(
                f"duckdb://{path}", dimension, embedder_name=embedder_name, clock=clock
            )

        return open_


def test_memory_url_opens_a_throwaway_index() -> None:
    with open_vector_index("memory://", DIM) as index:
        assert isinstance(index, DuckDBVectorIndex)
        assert index.url == "duckdb://:memory:"
        index.add([chunk("A")], np.ones((1, DIM)))
        assert index.count() == 1


def test_the_filter_is_in_the_sql_and_values_are_bound_not_pasted() -> None:
    index = DuckDBVectorIndex(":memory:", DIM)
    scope = AccessScope(
        data_classes=frozenset({"public"}), attributes={"department": frozenset({"it' OR 1=1"})}
    )
    where, params = index._where(scope)
    assert "it' OR 1=1" not in where
    assert "data_class = ANY(?)" in where
    assert ["it' OR 1=1"] in params


def test_two_tables_in_one_file_keep_their_own_dimension(tmp_path: Path) -> None:
    path = tmp_path / "kb.duckdb"
    DuckDBVectorIndex(path, 8, table="small").close()
    with DuckDBVectorIndex(path, 32, table="large") as large:
        large.add([chunk("A")], np.ones((1, 32)))
    with DuckDBVectorIndex(path, 8, table="small") as small:
        assert small.count() == 0


def test_a_table_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(ConfigError, match="table name"):
        DuckDBVectorIndex(":memory:", DIM, table="rag; DROP TABLE x")
    with pytest.raises(ConfigError, match="dimension"):
        DuckDBVectorIndex(":memory:", 0)


def test_an_index_written_by_a_newer_agentlab_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kb.duckdb"
    DuckDBVectorIndex(path, DIM).close()
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "UPDATE agentlab_meta SET value = '99' WHERE key = 'rag_chunks.schema_version'"
        )
    with pytest.raises(SchemaTooNew):
        DuckDBVectorIndex(path, DIM)


def test_the_article_columns_are_there(tmp_path: Path) -> None:
    path = tmp_path / "kb.duckdb"
    DuckDBVectorIndex(path, DIM).close()
    with duckdb.connect(str(path)) as conn:
        columns = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'rag_chunks'"
            ).fetchall()
        )
    assert columns["embedding"] == f"FLOAT[{DIM}]"
    assert {"id", "doc_id", "chunk_no", "content", "data_class", "created_at"} <= set(columns)
    assert {"attributes", "expires_at", "title"} <= set(columns)
