"""`agentlab audit verify` and `agentlab audit show` on a real DuckDB audit log."""

from __future__ import annotations

from pathlib import Path

import duckdb
from typer.testing import CliRunner

from agentlab.adapters import open_audit_log
from agentlab.cli import app
from agentlab.core.clock import TickingClock
from tests.contracts.audit_log import entry

runner = CliRunner()
WIDE = {"COLUMNS": "220"}


def _log(agentlab_home: Path, count: int = 3) -> Path:
    path = agentlab_home / "audit.duckdb"
    clock = TickingClock()
    with open_audit_log(f"duckdb://{path}") as log:
        for n in range(count):
            log.append(entry(n, clock, run_id=f"run_{n % 2}"))
    return path


def test_verify_passes_an_intact_log_and_prints_its_head(agentlab_home: Path) -> None:
    _log(agentlab_home)
    result = runner.invoke(app, ["audit", "verify"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "intact, 3 records" in result.stdout
    assert "head hash" in result.stdout


def test_verify_fails_a_tampered_log_naming_the_record(agentlab_home: Path) -> None:
    path = _log(agentlab_home)
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE audit_log SET decision = 'rejected' WHERE seq = 1")
    result = runner.invoke(app, ["audit", "verify"], env=WIDE)
    assert result.exit_code == 1
    assert "BROKEN at record 1" in result.stdout


def test_show_lists_one_runs_decisions(agentlab_home: Path) -> None:
    _log(agentlab_home, count=4)
    result = runner.invoke(app, ["audit", "show", "--run", "run_1"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "2 audit records" in result.stdout
    assert "policy:po_up_to_5000_usd" in result.stdout


def test_verify_without_a_log_says_how_to_get_one(agentlab_home: Path) -> None:
    result = runner.invoke(app, ["audit", "verify"], env=WIDE)
    assert result.exit_code == 2
    assert "no audit log at" in result.output


def test_verify_reads_the_log_named_by_url_and_reports_an_unparseable_record(
    agentlab_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "elsewhere" / "audit.duckdb"
    clock = TickingClock()
    with open_audit_log(f"duckdb://{path}") as log:
        for n in range(4):
            log.append(entry(n, clock))
    result = runner.invoke(app, ["audit", "verify", "--url", f"duckdb://{path}"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "intact, 4 records" in result.stdout
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE audit_log SET decision = 'erased' WHERE seq = 2")
    result = runner.invoke(app, ["audit", "verify", "--url", f"duckdb://{path}"], env=WIDE)
    assert result.exit_code == 1, result.output
    assert "BROKEN at record 2" in result.stdout
    assert "no longer parses" in result.stdout


def test_show_keeps_the_last_n_records(agentlab_home: Path) -> None:
    _log(agentlab_home, count=5)
    result = runner.invoke(app, ["audit", "show", "--limit", "2"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "2 audit records" in result.stdout
    assert "idk_0000000000000000000000000004" in result.stdout
    assert "idk_0000000000000000000000000002" not in result.stdout
