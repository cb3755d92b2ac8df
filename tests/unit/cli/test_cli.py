from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from agentlab import __version__
from agentlab.cli import app

runner = CliRunner()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"agentlab {__version__}"


def test_help_lists_the_verbs() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("demo", "runs"):
        assert verb in result.stdout


def test_demo_records_a_run_that_runs_list_and_show_can_read(agentlab_home: Path) -> None:
    demo = runner.invoke(app, ["demo"], env={"COLUMNS": "200"})
    assert demo.exit_code == 0, demo.output
    assert "repeated commit answered from its record: yes" in demo.stdout
    assert "audit chain: intact" in demo.stdout
    assert "no model" in demo.stdout  # never mistaken for a model's run
    assert (agentlab_home / "runs.duckdb").is_file()
    assert (agentlab_home / "audit.duckdb").is_file()

    listing = runner.invoke(app, ["runs", "list"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    run_ids = re.findall(r"run_[0-9a-f]{24}", listing.stdout)
    assert len(run_ids) == 1
    assert "succeeded" in listing.stdout

    shown = runner.invoke(app, ["runs", "show", run_ids[0]], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for kind in ("run_started", "step_approved", "run_resumed", "step_committed", "step_retried"):
        assert kind in shown.stdout


def test_store_option_overrides_the_home(tmp_path: Path, agentlab_home: Path) -> None:
    url = f"duckdb://{tmp_path / 'elsewhere.duckdb'}"
    result = runner.invoke(app, ["demo", "--store", url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere.duckdb").is_file()
    assert not (agentlab_home / "runs.duckdb").exists()


def test_an_unknown_run_is_a_clear_error_with_exit_code_2() -> None:
    runner.invoke(app, ["demo"])
    result = runner.invoke(app, ["runs", "show", "run_missing"])
    assert result.exit_code == 2
    assert "[CONFIG] no run 'run_missing'" in result.stderr
    assert "agentlab runs list" in result.stderr


def test_reading_a_store_that_does_not_exist_does_not_create_it(agentlab_home: Path) -> None:
    result = runner.invoke(app, ["runs", "list"])
    assert result.exit_code == 2
    assert "no event store at" in result.stderr
    assert not (agentlab_home / "runs.duckdb").exists()


def test_an_unknown_store_scheme_names_the_forms_that_work() -> None:
    result = runner.invoke(app, ["runs", "list", "--store", "mysql://db/runs"])
    assert result.exit_code == 2
    assert "scheme 'mysql' is not known" in result.stderr
    assert "postgresql://" in result.stderr
