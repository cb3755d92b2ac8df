"""The nightly job: replays held to their recordings, and regressions that point at the task.

A small suite (three helpdesk tasks) is recorded once per module with the simulator; each
test then replays it after a deliberate break: a tool that sends a second mail, a grader
that is wrong, a cassette edited into nonsense.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agentlab.lab.metrics import open_metrics
from agentlab.lab.nightly import run_nightly
from agentlab.lab.runner import run_suite
from agentlab.tools import ToolContext, ToolOutput, ToolRegistry, builtin_tools, tool
from agentlab.tools.mail import SendEmail

pytestmark = pytest.mark.integration

TASKS = ("po-toner", "mail-buyer", "kb-vpn")
HELPDESK = Path(__file__).parents[2] / "golden_runs" / "helpdesk" / "suite.yaml"


def _small_suite(folder: Path) -> Path:
    data = yaml.safe_load(HELPDESK.read_text(encoding="utf-8"))
    data["name"] = "nightly-test"
    data["configs"] = ["single"]
    data["models"] = ["sim-large"]
    data["tasks"] = [t for t in data["tasks"] if t["id"] in TASKS]
    data.pop("world", None)
    data.pop("policy", None)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small suite and its cassettes, recorded once."""
    root = tmp_path_factory.mktemp("nightly")
    suite = _small_suite(root / "suite")
    cassettes = root / "cassettes"
    run = run_suite(suite, config="single", model="sim-large", mode="record", cassettes=cassettes)
    assert [r.success for r in run.results] == [True, True, True], [
        c.detail for r in run.results for c in r.failed_checks
    ]
    return suite, cassettes


def _copy(recorded: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    suite, cassettes = recorded
    shutil.copytree(suite.parent, tmp_path / "suite")
    shutil.copytree(cassettes, tmp_path / "cassettes")
    return tmp_path / "suite" / "suite.yaml", tmp_path / "cassettes"


def test_an_unchanged_replay_has_no_regression(recorded: tuple[Path, Path]) -> None:
    suite, cassettes = recorded
    with open_metrics(":memory:") as metrics:
        outcome = run_nightly([suite], metrics=metrics, cassettes=cassettes)
        assert not outcome.is_regressed, [r.message for r in outcome.regressions]
        assert [r.success for r in outcome.runs[0].results] == [True, True, True]
        # The recording is the baseline: every measure is what was recorded.
        comparison = outcome.comparisons[0]
        assert all(m.delta == 0 for m in comparison.metrics)
        # The suite's SLOs, over tonight's three runs: all passed, so no budget is spent.
        ((label, statuses),) = outcome.slos
        assert label == "nightly-test · single · sim-large"
        success = next(s for s in statuses if s.slo.kpi == "success_rate")
        assert success.value == 1.0
        assert success.error_budget_remaining == 1.0
        assert not success.is_judged  # 3 runs, and the SLO wants 20 before judging


@tool(
    SendEmail,
    side_effect="write",
    scope="mail:send",
    system="email_send",
    masked_fields=("subject", "body"),
    targets=lambda args: tuple(f"mailto:{a}" for a in args.to),
)
async def send_email(args: SendEmail, ctx: ToolContext) -> ToolOutput:
    """Send an email. Recipients must be on the policy's allowlist of domains."""
    # The same tool as far as the model can tell (name, schema, description), but broken:
    # every mail it commits goes out twice.
    payload = {"to": list(args.to), "subject": args.subject, "body": args.body}
    body = await ctx.request("POST", "/mail/send", json={**payload, "dry_run": ctx.is_dry_run})
    if not ctx.is_dry_run:
        await ctx.request("POST", "/mail/send", json={**payload, "dry_run": False})
    return ToolOutput.of_write(body)


def test_a_tool_that_sends_a_second_mail_fails_nightly_at_its_task(
    recorded: tuple[Path, Path],
) -> None:
    suite, cassettes = recorded
    # In the same place as the real one: the model is offered the tools in registry order.
    broken = ToolRegistry(send_email if s.name == "send_email" else s for s in builtin_tools())
    with open_metrics(":memory:") as metrics:
        outcome = run_nightly([suite], metrics=metrics, cassettes=cassettes, tools=broken)
    assert outcome.is_regressed
    tasks = [r for r in outcome.regressions if r.kind == "task"]
    assert [r.name for r in tasks] == ["mail-buyer"]
    regression = tasks[0]
    assert regression.task is not None
    details = " ".join(c.detail for c in regression.task.failing_checks)
    # The second mail was never sent: it is an unrecorded side effect, named with its request.
    assert "unrecorded side effect: POST /mail/send" in details
    assert "buyer@example.co.jp" in details
    assert any(d.is_write and d.path == "/mail/send" for d in regression.task.divergences)


def test_a_wrong_grader_fails_nightly_from_the_cli(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    suite, cassettes = _copy(recorded, tmp_path)
    text = suite.read_text(encoding="utf-8").replace("qty: 16", "qty: 17")
    suite.write_text(text, encoding="utf-8")
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "agentlab.cli", "nightly", "--suite", str(suite),
         "--cassettes", str(cassettes), "--reports", str(reports)],
        capture_output=True, text=True, env={**os.environ, "AGENTLAB_HOME": str(tmp_path / "home")},
        timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "po-toner" in done.stdout
    assert "'qty': 17" in done.stdout  # the diff: what the grader expected, and what was done
    assert "Single agent (Plan + Tool)" in done.stdout  # the article's benchmark table
    (report,) = reports.glob("nightly-*.html")
    text = report.read_text(encoding="utf-8")
    assert "po-toner" in text
    assert "SLOs and error budgets" in text  # each SLO's budget and burn rate
    assert "SLO success: success_rate" in done.stdout


def test_a_cassette_edited_into_nonsense_is_named_and_loses_nothing(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    suite, cassettes = _copy(recorded, tmp_path)
    path = tmp_path / "lab.duckdb"
    with open_metrics(path) as metrics:
        first = run_nightly([suite], metrics=metrics, cassettes=cassettes)
        assert not first.is_regressed
    (broken,) = cassettes.glob("nightly-test/single/sim-large/kb-vpn.yaml")
    broken.write_text("interactions:\n  - request: {method: GET\n", encoding="utf-8")
    with open_metrics(path) as metrics:
        second = run_nightly([suite], metrics=metrics, cassettes=cassettes)
        kept = metrics.results(first.experiment_ids[0])
    (regression,) = second.regressions
    assert regression.name == "kb-vpn"
    assert str(broken) in regression.message
    assert "not valid YAML" in regression.message
    # The other tasks still ran, and the earlier experiment is intact.
    assert [r.success for r in second.runs[0].results if r.task_id != "kb-vpn"] == [True, True]
    assert [r.success for r in kept] == [True, True, True]
