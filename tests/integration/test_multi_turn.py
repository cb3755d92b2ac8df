"""Multi-turn tasks end to end: the simulator and the world in-process, the lab's runner, the
scripted requester, the shipped cassettes and DuckDB metrics. No part is mocked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agentlab.cli.app import app
from agentlab.lab import load_suite, multi_turn_pass_k, run_suite
from agentlab.lab.metrics import open_metrics
from agentlab.lab.results import RunResult
from agentlab.lab.runner import CASSETTES, cassette_path
from agentlab.lab.suite import Suite

ASSET_TAG = "mt-asset-tag-laptop"
PUSHY = "mt-push-laptops"


@pytest.fixture(scope="module")
def helpdesk() -> Suite:
    return load_suite("helpdesk")


def _one(suite: Suite, task_id: str, **options: object) -> RunResult:
    run = run_suite(suite, tasks=[task_id], concurrency=1, **options)  # type: ignore[arg-type]
    return run.results[0]


def test_an_agent_that_opens_the_ticket_without_asking_for_the_asset_tag_fails(
    helpdesk: Suite, tmp_path: Path
) -> None:
    # sim-hasty never asks for a fact the request names but leaves out.
    hasty = _one(
        helpdesk, ASSET_TAG, config="single", model="sim-hasty", mode="record", cassettes=tmp_path
    )
    assert not hasty.success
    assert hasty.questions_asked == 0
    assert hasty.acted_on_assumption
    failed = {c.name: c.detail for c in hasty.failed_checks}
    assert "LT-0042" in failed["side_effects"]
    assert "never asked for asset_tag" in failed["conversation"]
    assert "acted on an unconfirmed assumption: create_ticket" in failed["conversation"]


def test_an_agent_that_asks_for_the_asset_tag_passes(helpdesk: Suite, tmp_path: Path) -> None:
    careful = _one(
        helpdesk, ASSET_TAG, config="single", model="sim-large", mode="record", cassettes=tmp_path
    )
    assert careful.success, careful.failed_checks
    assert (careful.questions_asked, careful.questions_needed, careful.agent_turns) == (1, 1, 2)
    assert not careful.acted_on_assumption
    assert careful.ended_by == "requester"
    ticket = next(w for w in careful.side_effects if w.tool == "create_ticket")
    assert "LT-0042" in str(ticket.arguments["body"])


def test_a_pushy_requester_gets_no_forbidden_order_and_the_push_is_a_safety_event(
    tmp_path: Path,
) -> None:
    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        run = run_suite("helpdesk", config="single", model="sim-large", tasks=[PUSHY],
                        metrics=metrics)  # fmt: skip
        kpis = metrics.kpis([run.experiment.experiment_id]).iloc[0]
        stored = metrics.runs([run.experiment.experiment_id])
    assert len(run.results) == 4  # the task's own `repeats: 4`
    for result in run.results:
        assert result.success, result.failed_checks
        assert (result.push_attempts, result.pushes_obeyed) == (1, 0)
        assert not any(w.tool == "create_purchase_order" for w in result.side_effects)
        assert result.safety_events == result.safety_violations + 1
    assert (kpis["push_attempts"], kpis["pushes_obeyed"]) == (4, 0)
    assert kpis["safety_events"] == kpis["safety_violations"] + 4
    assert kpis["multi_turn_runs"] == 4
    assert list(stored["push_attempts"]) == [1, 1, 1, 1]


def test_the_turn_limit_ends_the_run_with_its_status(helpdesk: Suite, tmp_path: Path) -> None:
    task = helpdesk.task("mt-close-ticket")
    assert task.requester is not None
    limited = task.model_copy(
        update={"requester": task.requester.model_copy(update={"max_turns": 1})}
    )
    suite = helpdesk.model_copy(update={"tasks": (limited,)})
    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        run = run_suite(suite, config="single", model="sim-large", mode="record",
                        cassettes=tmp_path, metrics=metrics, tasks=["mt-close-ticket"])  # fmt: skip
        result = run.results[0]
        events = metrics.events(result.run_id or "", run.experiment.experiment_id)
        kpis = metrics.kpis([run.experiment.experiment_id]).iloc[0]
    assert result.status == "failed"
    assert result.ended_by == "max_turns"
    assert not result.success
    assert "the turn limit ended the run" in next(
        c.detail for c in result.failed_checks if c.name == "conversation"
    )
    kinds = list(events["kind"])
    assert kinds[-2:] == ["agent_replied", "run_finished"]
    assert "stopped: max_turns (1) reached" in events["payload"].iloc[-1]
    assert kpis["turn_limit_runs"] == 4
    # The agent asked for the ticket and had its one turn: it is not told, and closes nothing.
    assert result.agent_turns == 1
    assert (kinds.count("agent_replied"), kinds.count("user_replied")) == (1, 0)
    assert result.side_effects == ()  # no write was committed


def test_a_requester_who_is_done_at_the_turn_limit_ends_the_run_normally(
    helpdesk: Suite, tmp_path: Path
) -> None:
    # mt-push-laptops takes 2 agent turns: the second ends it, and the requester is done.
    task = helpdesk.task(PUSHY)
    assert task.requester is not None
    limited = task.model_copy(
        update={"requester": task.requester.model_copy(update={"max_turns": 2})}
    )
    suite = helpdesk.model_copy(update={"tasks": (limited,)})
    run = run_suite(suite, config="single", model="sim-large", mode="record", cassettes=tmp_path,
                    tasks=[PUSHY], repeats=1)  # fmt: skip
    result = run.results[0]
    assert result.success, result.failed_checks
    assert (result.agent_turns, result.ended_by) == (2, "requester")


def _recorded(tmp_path: Path, task_id: str) -> Path:
    """``task_id``'s four cassettes, recorded afresh under ``tmp_path``."""
    run = run_suite("helpdesk", config="single", model="sim-large", tasks=[task_id],
                    mode="record", cassettes=tmp_path)  # fmt: skip
    assert all(r.success for r in run.results), [r.failed_checks for r in run.results]
    return cassette_path(tmp_path, "helpdesk", "single", "sim-large", task_id)


def test_an_error_mid_conversation_keeps_the_requester_turns_said_before_it(
    tmp_path: Path,
) -> None:
    cassette = _recorded(tmp_path, PUSHY)
    data = yaml.safe_load(cassette.read_text(encoding="utf-8"))
    turns = data["metadata"]["agentlab"]["turns"]
    assert [t["act"] for t in turns] == ["pushed", "done"]
    # A blank second reply: the agent refuses it (ConfigError) after the push was made.
    turns[1] |= {"act": "answered", "message": " "}
    cassette.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    run = run_suite("helpdesk", config="single", model="sim-large", tasks=[PUSHY],
                    cassettes=tmp_path, repeats=1)  # fmt: skip
    result = run.results[0]
    assert result.error is not None
    assert "a reply needs some text" in result.error
    assert not result.success
    assert (result.push_attempts, result.pushes_obeyed) == (1, 0)
    assert result.safety_events == result.safety_violations + 1


def test_a_multi_turn_run_that_could_not_be_carried_out_counts_in_pass_k(
    tmp_path: Path,
) -> None:
    cassette = _recorded(tmp_path, PUSHY)
    cassette.with_name(f"{PUSHY}.r3.yaml").unlink()
    run = run_suite("helpdesk", config="single", model="sim-large", tasks=[PUSHY],
                    cassettes=tmp_path)  # fmt: skip
    assert [r.status == "error" for r in run.results] == [False, False, False, True]
    assert all(r.is_multi_turn for r in run.results)
    (row,) = multi_turn_pass_k(run.results, k=4)
    assert (row.tasks, row.runs, row.pass_1, row.pass_k) == (1, 4, 0.75, 0.0)
    assert row.avg_agent_turns == 2.0  # the run that never ran has no turns to average


def _events(tmp_path: Path, name: str, task_id: str) -> list[tuple[int, str, str]]:
    with open_metrics(tmp_path / f"{name}.duckdb") as metrics:
        run = run_suite("helpdesk", config="multi", model="sim-small", tasks=[task_id],
                        metrics=metrics)  # fmt: skip
        rows = []
        for result in run.results:
            frame = metrics.events(result.run_id or "", run.experiment.experiment_id)
            rows += [(int(s), str(k), str(p)) for s, k, p in
                     zip(frame["seq"], frame["kind"], frame["payload"], strict=True)]  # fmt: skip
    return rows


def test_replaying_a_multi_turn_task_twice_gives_the_same_events(tmp_path: Path) -> None:
    first = _events(tmp_path, "one", "mt-clarify-toner")
    second = _events(tmp_path, "two", "mt-clarify-toner")
    assert first == second
    kinds = [kind for _, kind, _ in first]
    assert "user_replied" in kinds
    assert "agent_replied" in kinds


def test_a_requester_turn_that_changed_is_a_divergence_in_replay(tmp_path: Path) -> None:
    source = cassette_path(CASSETTES, "helpdesk", "single", "sim-large", "mt-close-ticket")
    target = cassette_path(tmp_path, "helpdesk", "single", "sim-large", "mt-close-ticket")
    shutil.copytree(source.parent, target.parent)  # the task runs four times
    data = yaml.safe_load(target.read_text(encoding="utf-8"))
    turns = data["metadata"]["agentlab"]["turns"]
    said = turns[0]["message"]
    turns[0]["message"] = said.replace("TCK-000006", "TCK-000007")
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    run = run_suite("helpdesk", config="single", model="sim-large", tasks=["mt-close-ticket"],
                    cassettes=tmp_path, repeats=1)  # fmt: skip
    result = run.results[0]
    assert not result.success
    requester = [d for d in result.divergences if d.target == "requester"]
    assert requester
    assert said in requester[0].summary
    assert "TCK-000007" in requester[0].summary
    assert any(c.name == "replay" and "requester" in c.detail for c in result.failed_checks)


def test_pass_k_of_the_multi_turn_tasks_is_computed_and_printed(tmp_path: Path) -> None:
    run = run_suite("helpdesk", config="single", model="sim-small",
                    tasks=["mt-toner", "mt-clarify-toner"])  # fmt: skip
    (row,) = multi_turn_pass_k(run.results, k=4)
    assert (row.config, row.model, row.tasks, row.runs) == ("single", "sim-small", 2, 8)
    per_task = {}
    for result in run.results:
        per_task.setdefault(result.task_id, []).append(result.success)
    assert row.pass_1 == sum(sum(v) / 4 for v in per_task.values()) / 2
    assert row.pass_k == sum(all(v) for v in per_task.values()) / 2
    assert row.pass_k is not None
    assert row.pass_1 is not None
    assert row.pass_k <= row.pass_1
    arguments = ["run", "--suite", "helpdesk", "--config", "single", "--model", "sim-small"]
    arguments += ["--task", "mt-toner", "--task", "mt-clarify-toner"]
    arguments += ["--metrics", str(tmp_path / "lab.duckdb")]
    out = CliRunner().invoke(app, arguments, env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "multi-turn tasks: pass^1 and pass^4" in out.output
    assert "config  model      tasks  runs  pass^1  pass^4" in out.output
    line = next(x for x in out.output.splitlines() if x.startswith("single  sim-small"))
    cells = line.split()
    assert cells[:6] == ["single", "sim-small", "2", "8", f"{row.pass_1:.3f}", f"{row.pass_k:.3f}"]


def test_chat_rag_reads_the_reply_as_its_next_question(tmp_path: Path) -> None:
    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        run = run_suite("helpdesk", config="chat_rag", model="sim-large", tasks=[PUSHY],
                        metrics=metrics)  # fmt: skip
        result = run.results[0]
        events = metrics.events(result.run_id or "", run.experiment.experiment_id)
        artifacts = metrics.artifacts(run.experiment.experiment_id)
    kinds = list(events["kind"])
    assert kinds.count("agent_replied") == 2
    assert kinds.count("user_replied") == 1
    assert kinds[-1] == "run_finished"
    retrievals = [p for k, p in zip(events["kind"], events["payload"], strict=True)
                  if k == "artifact_recorded" and '"retrieval"' in p]  # fmt: skip
    assert len(retrievals) == 2
    assert "150 LAPTOP-16-DEV" in retrievals[1]  # the second turn retrieved for the push
    assert (result.push_attempts, result.pushes_obeyed) == (1, 0)
    assert len(artifacts) > 0
