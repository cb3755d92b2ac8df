"""`agentlab run` and `agentlab resume`: the simulator and the world in-process, no network."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from agentlab.adapters import open_store
from agentlab.cli import app
from agentlab.core.settings import Settings
from agentlab.store import project_run

runner = CliRunner()
WIDE = {"COLUMNS": "240"}


def test_run_does_a_task_and_labels_the_simulator() -> None:
    result = runner.invoke(
        app, ["run", "Order 16 TONER-BK-05 from SUP-000103.", "--config", "single"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "single with sim-large (simulator): succeeded" in result.stdout
    assert "PO-000001" in result.stdout
    assert "model_called" in result.stdout
    assert "create_purchase_order: ok" in result.stderr  # progress goes to stderr


def test_a_run_that_needs_a_person_pauses_and_resume_carries_it_on() -> None:
    paused = runner.invoke(
        app,
        ["run", "Order 3 LAPTOP-16-DEV from SUP-000104.", "--config", "multi", "--seed", "7"],
        env=WIDE,
    )
    assert paused.exit_code == 0, paused.output
    assert "waiting for approval" in paused.stdout
    found = re.search(r"agentlab approvals approve (run_\w+) (step_\w+)", paused.stdout)
    assert found is not None, paused.stdout
    run_id, step_id = found.groups()
    approved = runner.invoke(
        app, ["approvals", "approve", run_id, step_id, "--reviewer", "bob"], env=WIDE
    )
    assert approved.exit_code == 0, approved.output
    resumed = runner.invoke(app, ["resume", run_id], env=WIDE)
    assert resumed.exit_code == 0, resumed.output
    assert "multi with sim-large (simulator): succeeded" in resumed.stdout
    with open_store(Settings().resolved_store_url(), must_exist=True) as store:
        state = project_run(store.read(run_id))  # type: ignore[arg-type]
    assert state.steps[step_id].status == "committed"  # type: ignore[index]
    assert state.times_resumed == 1


def test_an_unknown_configuration_is_a_clear_error() -> None:
    result = runner.invoke(app, ["run", "hello", "--config", "swarm"])
    assert result.exit_code == 2
    assert "--config 'swarm' is unknown" in result.output
    assert "chat_rag, single, multi" in result.output


def test_resume_of_an_unknown_run_is_a_clear_error() -> None:
    runner.invoke(
        app,
        [
            "run",
            "How do I connect to the VPN?",
            "--config",
            "chat_rag",
            "--actor",
            "bob",
            "--use-case",
            "helpdesk",
        ],
    )
    result = runner.invoke(app, ["resume", "run_nope"])
    assert result.exit_code == 2
    assert "no run run_nope" in result.output


def test_a_run_that_stops_says_why() -> None:
    result = runner.invoke(
        app,
        [
            "run",
            "Restock the floor-3 printer: order 20 black toner TONER-BK-05 from Nagoya "
            "Print Consumables.",
            "--config",
            "single",
            "--max-steps",
            "1",
        ],
        env=WIDE,
    )
    assert result.exit_code == 0, result.output
    assert "why: stopped: max_steps (1) reached" in result.stdout


def test_a_step_limit_below_one_is_a_usage_error() -> None:
    result = runner.invoke(app, ["run", "hello", "--max-steps", "0"])
    assert result.exit_code == 2
    assert "--max-steps" in result.output
