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


def test_purge_older_than_n_days_at_the_log_named_by_url(
    agentlab_home: Path, tmp_path: Path
) -> None:
    url = f"duckdb://{tmp_path / 'elsewhere.duckdb'}"
    key = load_or_create_conversation_key(agentlab_home)
    now = datetime.now(UTC)
    with open_conversation_log(url, key=key) as log:
        for days in (10, 5, 1):
            log.append("run_a", "user", f"{days} days ago", at=now - timedelta(days=days))
    result = runner.invoke(app, ["conversations", "purge", "--older-than-days", "3", "--url", url])
    assert result.exit_code == 0, result.output
    assert "deleted 2 turns older than" in result.stdout
    with open_conversation_log(url, key=key) as log:
        assert [t.text for t in log.read("run_a")] == ["1 days ago"]
