"""The DuckDB audit log: the contract, and tampering done straight to the file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from agentlab.adapters import open_audit_log
from agentlab.adapters.duckdb_audit_log import DuckDBAuditLog
from agentlab.core.clock import TickingClock
from agentlab.core.errors import InvalidEvent
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
        check = verify_chain(log.read())
        assert log.verify() == check
        return check


def _verify(path: Path):
    with open_audit_log(f"duckdb://{path}", must_exist=True) as log:
        return log.verify()


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


def test_a_column_set_to_a_value_no_record_has_is_a_break_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path)
    _tamper(path, "UPDATE audit_log SET decision = 'erased' WHERE seq = 3")
    check = _verify(path)
    assert (check.is_intact, check.first_bad_seq, check.checked) == (False, 3, 5)
    assert "no longer parses" in check.problem
    assert "decision" in check.problem
    with open_audit_log(f"duckdb://{path}") as log, pytest.raises(InvalidEvent, match="record 3"):
        log.read()


def test_a_body_that_is_not_an_object_is_a_break(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path)
    _tamper(path, "UPDATE audit_log SET body = '[]' WHERE seq = 0")
    check = _verify(path)
    assert (check.is_intact, check.first_bad_seq) == (False, 0)
    assert "not an object" in check.problem


def test_an_earlier_break_is_named_before_a_later_unparseable_row(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path)
    _tamper(path, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    _tamper(path, "UPDATE audit_log SET decision = 'erased' WHERE seq = 3")
    check = _verify(path)
    assert (check.first_bad_seq, check.checked) == (1, 5)
    assert "edited" in check.problem


def test_a_file_at_schema_version_1_moves_to_2_and_keeps_its_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _written(path, count=2)
    _tamper(path, "UPDATE agentlab_meta SET value = '1' WHERE key = 'audit_schema_version'")
    with open_audit_log(f"duckdb://{path}") as log:
        log.append(entry(2, TickingClock()))
        check = log.verify()
        assert (check.is_intact, check.checked) == (True, 3)
    with duckdb.connect(str(path)) as conn:
        meta = conn.execute("SELECT value FROM agentlab_meta WHERE key = 'audit_schema_version'")
        assert meta.fetchone() == ("2",)


def test_the_documented_query_runs(tmp_path: Path) -> None:
    from tests.contracts.audit_log import documented_sql

    path = tmp_path / "audit.duckdb"
    _written(path, count=4)
    with duckdb.connect(str(path)) as conn:
        rows = conn.execute(documented_sql()).fetchall()
    assert [row[0] for row in rows] == [1, 3]  # the committed ones
    assert rows[0][5] == "policy:po_up_to_5000_usd"
