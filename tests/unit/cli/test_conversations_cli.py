"""`agentlab conversations purge` on the default DuckDB conversation log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from agentlab.adapters import open_conversation_log
from agentlab.cli import app
from agentlab.store.conversation import load_or_create_conversation_key

runner = CliRunner()


def _log_with_turns(home: Path) -> str:
    url = f"duckdb://{home / 'conversations.duckdb'}"
    now = datetime.now(UTC)
    with open_conversation_log(url, key=load_or_create_conversation_key(home)) as log:
        log.append("run_old", "user", "old", at=now - timedelta(days=40))
        log.append("run_new", "user", "new", at=now - timedelta(days=1))
        log.append("run_new", "assistant", "reply", at=now)
    return url


def test_purge_by_default_retention_keeps_the_last_30_days(agentlab_home: Path) -> None:
    url = _log_with_turns(agentlab_home)
    result = runner.invoke(app, ["conversations", "purge"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 turns" in result.stdout
    with open_conversation_log(url, key=load_or_create_conversation_key(agentlab_home)) as log:
        assert log.read("run_old") == []
        assert len(log.read("run_new")) == 2


def test_purge_of_a_run_erases_it(agentlab_home: Path) -> None:
    _log_with_turns(agentlab_home)
    result = runner.invoke(app, ["conversations", "purge", "--run", "run_new"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 turns of run run_new" in result.stdout


def test_run_and_age_together_are_refused(agentlab_home: Path) -> None:
    result = runner.invoke(app, ["conversations", "purge", "--run", "r", "--older-than-days", "3"])
    assert result.exit_code == 2
    assert "not both" in result.output
