"""`agentlab tools`, `agentlab policy check` and `agentlab approvals`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agentlab.adapters import open_store
from agentlab.cli import app
from agentlab.store import RunRecorder, project_run
from tests.article import ARTICLE_PO_SCHEMA

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def test_tools_schema_prints_what_the_model_sees() -> None:
    result = runner.invoke(app, ["tools", "schema", "create_purchase_order"])
    assert result.exit_code == 0, result.output
    tool = json.loads(result.stdout)
    assert tool["function"]["strict"] is True
    assert tool["function"]["description"] == ARTICLE_PO_SCHEMA["description"]
    assert set(tool["function"]["parameters"]["required"]) == set(
        ARTICLE_PO_SCHEMA["parameters"]["required"]
    )


def test_an_unknown_tool_is_a_clear_error() -> None:
    result = runner.invoke(app, ["tools", "schema", "transfer_money"])
    assert result.exit_code == 2
    assert "no tool 'transfer_money'" in result.output
    assert "create_purchase_order" in result.output  # the hint lists the known ones


def test_tools_list_says_why_a_tool_is_not_offered() -> None:
    result = runner.invoke(
        app, ["tools", "list", "--actor", "bob", "--use-case", "helpdesk"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if "create_purchase_order" in x)
    assert "does not offer" in line


def test_policy_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        "phase: 3\nactors: {}\nuse_cases: {}\n"
        "rateLimits:\n  tools:\n    erp_api:\n      concurrency: zero\n"
    )
    result = runner.invoke(app, ["policy", "check", str(bad)], env=WIDE)
    assert result.exit_code == 2
    assert f"{bad}:7:" in result.output
    assert "rateLimits.tools.erp_api.concurrency" in result.output


def test_policy_check_refuses_a_tool_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("phase: 1\nactors: {}\nuse_cases: {ops: {tools: [rm_rf]}}\n")
    result = runner.invoke(app, ["policy", "check", str(path)], env=WIDE)
    assert result.exit_code == 2
    assert "rm_rf" in result.output


def test_policy_check_summarises_a_valid_policy() -> None:
    default = Path(__file__).parents[3] / "agentlab" / "policy" / "default.yaml"
    result = runner.invoke(app, ["policy", "check", str(default)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "autonomy phase 3" in result.stdout
    guest = next(x for x in result.stdout.splitlines() if x.startswith("│ guest"))
    assert "search_kb" in guest
    assert "create_ticket" not in guest


def _waiting_step(agentlab_home: Path) -> tuple[str, str, str]:
    url = f"duckdb://{agentlab_home / 'runs.duckdb'}"
    with open_store(url) as store:
        rec = RunRecorder.start(store, task="big order", actor="alice")
        step = rec.propose(
            "create_purchase_order", {"supplier_id": "SUP-000001"}, side_effect="write"
        )
        rec.dry_run(step.step_id, {"result": {"total_usd": 9000}, "diff": None})
    return url, rec.run_id, step.step_id


def test_approvals_list_approve_and_the_answer_is_in_the_run(agentlab_home: Path) -> None:
    url, run_id, step_id = _waiting_step(agentlab_home)

    listing = runner.invoke(app, ["approvals", "list"], env=WIDE)
    assert listing.exit_code == 0, listing.output
    assert step_id in listing.stdout
    assert "9000" in listing.stdout

    approved = runner.invoke(
        app, ["approvals", "approve", run_id, step_id, "--reviewer", "rita", "--reason", "ok"]
    )
    assert approved.exit_code == 0, approved.output
    with open_store(url) as store:
        state = project_run(store.read(run_id))
    assert state.steps[step_id].status == "approved"
    assert state.steps[step_id].decision.approver == "rita"

    again = runner.invoke(
        app, ["approvals", "reject", run_id, step_id, "--reviewer", "rita", "--reason", "no"]
    )
    assert again.exit_code == 2
    assert "is not waiting for approval" in " ".join(again.output.split())  # however rich wraps
