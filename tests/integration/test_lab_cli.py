"""`agentlab run --suite`: record and replay a small suite, print the article's benchmark table,
and refuse bad input with exit code 2 and the file and line at fault.

AGENTLAB_HOME is a temporary folder (tests/conftest.py), so the metrics database is too.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from agentlab.cli import app
from agentlab.lab.metrics import CONFIG_LABELS, open_metrics

MINI = Path(__file__).parents[1] / "fixtures" / "suites" / "mini" / "suite.yaml"
WIDE = {"COLUMNS": "240"}
TWO_TASKS = ["--task", "po-toner", "--task", "stock-staples"]

runner = CliRunner()


def test_record_then_replay_prints_the_benchmark_table(tmp_path: Path, agentlab_home: Path) -> None:
    cassettes = tmp_path / "cassettes"
    suite = ["run", "--suite", str(MINI), "--cassettes", str(cassettes), *TWO_TASKS]
    recorded = runner.invoke(app, [*suite, "--mode", "record"], env=WIDE)
    assert recorded.exit_code == 0, recorded.output
    assert (cassettes / "mini" / "multi" / "sim-large" / "stock-staples.yaml").is_file()

    replayed = runner.invoke(app, [*suite, "--mode", "replay"], env=WIDE)
    assert replayed.exit_code == 0, replayed.output
    out = replayed.stdout
    assert "mini: sim-large (agentlab's offline simulator)" in out
    for column in (
        "configuration",
        "P50",
        "P95",
        "success rate",
        "average tool calls",
        "cost per run",
    ):
        assert column in out
    rows = [line for line in out.splitlines() if line.startswith(tuple(CONFIG_LABELS.values()))]
    assert [row.split("  ")[0].strip() for row in rows] == list(CONFIG_LABELS.values())
    single = next(row for row in rows if row.startswith(CONFIG_LABELS["single"]))
    assert "100%" in single

    with open_metrics(agentlab_home / "lab.duckdb") as store:
        experiments = store.experiments("mini")
    assert sorted(experiments["mode"]) == ["record"] * 3 + ["replay"] * 3
    assert experiments["finished_at"].notna().all()


def test_a_replay_without_cassettes_exits_1_naming_the_cause(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["run", "--suite", str(MINI), "--cassettes", str(tmp_path / "none"), "--config", "single",
         "--task", "po-toner"],
        env=WIDE,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "1 failed run(s)" in result.stdout
    assert "po-toner" in result.stdout
    assert "cassette: [CASSETTE] no cassette at" in result.stdout


def test_run_without_a_task_or_a_suite_exits_2_saying_what_to_give() -> None:
    result = runner.invoke(app, ["run"], env=WIDE)
    assert result.exit_code == 2
    assert "say what to do: a task in quotes, or --suite NAME" in result.output


def test_a_task_and_a_suite_together_exit_2() -> None:
    result = runner.invoke(app, ["run", "Order toner.", "--suite", str(MINI)], env=WIDE)
    assert result.exit_code == 2
    assert "give a task or --suite, not both" in result.output


def test_an_unknown_mode_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["run", "--suite", str(MINI), "--mode", "sideways", "--cassettes", str(tmp_path)],
        env=WIDE,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "sideways" in result.output


def test_a_bad_suite_exits_2_naming_the_file_and_line(tmp_path: Path) -> None:
    text = MINI.read_text(encoding="utf-8").replace("actor: bob", "actor: zed", 1)
    path = tmp_path / "broken" / "suite.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    line = text[: text.index("actor: zed")].count("\n") + 1
    result = runner.invoke(
        app, ["run", "--suite", str(path), "--cassettes", str(tmp_path)], env=WIDE
    )
    assert result.exit_code == 2
    flat = " ".join(result.output.split())  # the message may be wrapped
    assert f"{path}:{line}: field 'tasks.3.actor': actor 'zed' is not in the policy" in flat
