"""The DuckDB audit log: the contract, and tampering done straight to the file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from agentlab.adapters import open_audit_log
from agentlab.adapters.duckdb_audit_log import DuckDBAuditLog
from agentlab.core.clock import TickingClock
from agentlab.store.audit import chain, verify_chain
from tests.contracts.audit_log import AuditLogContract, OpenLog, entry


class TestDuckDBAuditLog(AuditLogContract):
    @pytest.fixture
    def open_log(self, tmp_path: Path) -> OpenLog:
        return lambda: DuckDBAuditLog(tmp_path / "audit.duckdb")


def _written(path: Path, count: int = 5) -> None:
    clock = TickingClock()
    with open_audit_log(f"duckdb://{path}") as log:
        for n in range(count):
            log.append(entry(n, clock))


def _tamper(path: Path, sql: str, params: list[object] | None = None) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute(sql, params or [])


def _check(path: Path):
    with open_audit_log(f"duckdb://{path}", must_exist=True) as log:
        return verify_chain(log.read())


def test_an_edited_body_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path)
    _tamper(
        path,
        "UPDATE audit_log SET body = json_merge_patch(body, ?) WHERE seq = 2",
        [json.dumps({"approval": "human:nobody"})],
    )
    check = _check(path)
    assert (check.is_intact, check.first_bad_seq) == (False, 2)


def test_an_edited_column_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path)
    _tamper(path, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    assert _check(path).first_bad_seq == 3


def test_a_deleted_record_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path)
    _tamper(path, "DELETE FROM audit_log WHERE seq = 1")
    check = _check(path)
    assert (check.is_intact, check.first_bad_seq) == (False, 1)
    assert "missing" in check.problem


def test_a_forged_record_with_its_hash_recomputed_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path)
    with open_audit_log(f"duckdb://{path}") as log:
        original = log.read()[2]
    forged = chain(
        original.entry().model_copy(update={"result": {"po_id": "PO-999999"}}),
        seq=2,
        prev_hash=original.prev_hash,
    )
    _tamper(
        path,
        "UPDATE audit_log SET body = ?, hash = ? WHERE seq = 2",
        [forged.model_dump_json(), forged.hash],
    )
    check = _check(path)
    assert (check.is_intact, check.first_bad_seq) == (False, 3)


def test_the_documented_query_runs(tmp_path: Path) -> None:
    from tests.contracts.audit_log import documented_sql

    path = tmp_path / "audit.duckdb"
    _written(path, count=4)
    with duckdb.connect(str(path)) as conn:
        rows = conn.execute(documented_sql()).fetchall()
    assert [row[0] for row in rows] == [1, 3]  # the committed ones
    assert rows[0][5] == "policy:po_up_to_5000_usd"
