"""Hand-built graded runs and their events, whose KPIs the tests know by heart.

Shared by the metrics, compare and report tests (unit and browser).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agentlab.core.events import (
    ArtifactRecorded,
    Event,
    ModelCalled,
    RunFinished,
    RunStarted,
    StepApproved,
    StepCommitted,
    StepDryRunCompleted,
    StepFailed,
    StepProposed,
    StepRejected,
)
from agentlab.core.ids import ArtifactId, RunId, StepId
from agentlab.core.records import Artifact, Run, Step
from agentlab.lab.results import (
    CheckResult,
    Divergence,
    ExperimentSpec,
    RunResult,
    SideEffectRecord,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def spec(config: str = "single", model: str = "sim-large", **more: Any) -> ExperimentSpec:
    values: dict[str, Any] = {
        "suite": "helpdesk",
        "config": config,
        "model": model,
        "mode": "replay",
        "code_version": "0.1.0+abc",
    }
    return ExperimentSpec(**(values | more))


def result(
    task_id: str,
    *,
    experiment_id: str = "exp-a",
    config: str = "single",
    model: str = "sim-large",
    repetition: int = 0,
    success: bool = True,
    latency_ms: float = 1000.0,
    cost_usd: float = 0.01,
    tool_calls: int = 2,
    tool_failures: int = 0,
    external_calls: int = 1,
    dry_runs: int = 0,
    blocked_calls: int = 0,
    forbidden_effects: int = 0,
    rework: bool = False,
    side_effects: Sequence[SideEffectRecord] = (),
    divergences: Sequence[Divergence] = (),
    checks: Sequence[CheckResult] | None = None,
    status: str | None = None,
    run_id: str | None = None,
    **more: Any,
) -> RunResult:
    if checks is None:
        checks = (
            (CheckResult(name="status", passed=True),)
            if success
            else (
                CheckResult(name="status", passed=True),
                CheckResult(name="side_effects", passed=False, detail="expected 1 send_mail"),
            )
        )
    failed = [c for c in checks if not c.passed]
    return RunResult(
        experiment_id=experiment_id,
        suite="helpdesk",
        config=config,
        model=model,
        mode="replay",
        task_id=task_id,
        kind="mail",
        repetition=repetition,
        run_id=run_id,
        status=status or ("succeeded" if success else "failed"),
        answer="done",
        success=success,
        checks=tuple(checks),
        failure_cause=failed[0].name if failed else None,
        latency_ms=latency_ms,
        model_calls=2,
        prompt_tokens=300,
        completion_tokens=40,
        cost_usd=cost_usd,
        tool_calls=tool_calls,
        external_calls=external_calls,
        dry_runs=dry_runs,
        blocked_calls=blocked_calls,
        tool_failures=tool_failures,
        forbidden_effects=forbidden_effects,
        rework=rework,
        side_effects=tuple(side_effects),
        divergences=tuple(divergences),
        **more,
    )


def mail(to: str, subject: str = "Your ticket") -> SideEffectRecord:
    return SideEffectRecord(tool="send_mail", arguments={"to": to, "subject": subject})


def run_events(run_id: str, *, task: str = "reset my password") -> list[Event]:
    """A governed run: a read, a reviewed write (edited), a policy block, a failure, an answer."""
    rid = RunId(run_id)
    at = [T0 + timedelta(milliseconds=100 * i) for i in range(20)]
    read = Step(
        step_id=StepId(f"{run_id}-s0"),
        run_id=rid,
        position=0,
        tool="search_kb",
        arguments={"query": "password"},
        side_effect="read",
    )
    write = Step(
        step_id=StepId(f"{run_id}-s1"),
        run_id=rid,
        position=1,
        tool="send_mail",
        arguments={"to": "bob@example.co.jp", "subject": "hi"},
        side_effect="write",
        idempotency_key=f"idk_{run_id}_0001_send",
    )
    blocked = Step(
        step_id=StepId(f"{run_id}-s2"),
        run_id=rid,
        position=2,
        tool="send_mail",
        arguments={"to": "eve@evil.example", "subject": "secrets"},
        side_effect="write",
        idempotency_key=f"idk_{run_id}_0002_send",
    )
    failing = Step(
        step_id=StepId(f"{run_id}-s3"),
        run_id=rid,
        position=3,
        tool="find_ticket",
        arguments={"id": "T-1"},
        side_effect="read",
    )
    answer = Artifact(
        artifact_id=ArtifactId(f"{run_id}-a0"),
        run_id=rid,
        kind="answer",
        content={"text": "done"},
    )
    run = Run(run_id=rid, task=task, actor="alice", config="single", started_at=at[0])
    return [
        RunStarted(run_id=rid, seq=0, at=at[0], run=run),
        ModelCalled(
            run_id=rid,
            seq=1,
            at=at[1],
            node="agent",
            model="sim-large",
            is_simulated=True,
            prompt_tokens=100,
            completion_tokens=20,
            cost_usd=0.001,
            latency_ms=50,
        ),
        StepProposed(run_id=rid, seq=2, at=at[2], step=read),
        StepCommitted(
            run_id=rid,
            seq=3,
            at=at[3],
            step_id=read.step_id,
            idempotency_key=None,
            result={"hits": 1},
            latency_ms=12.0,
        ),
        StepProposed(run_id=rid, seq=4, at=at[4], step=write),
        StepDryRunCompleted(run_id=rid, seq=5, at=at[5], step_id=write.step_id, diff={"n": 1}),
        StepApproved(
            run_id=rid,
            seq=6,
            at=at[6],
            step_id=write.step_id,
            approver="carol",
            approved_by="human",
            edited_arguments={"to": "bob@example.co.jp", "subject": "Your password"},
        ),
        StepCommitted(
            run_id=rid,
            seq=7,
            at=at[7],
            step_id=write.step_id,
            idempotency_key=write.idempotency_key,
            result={"message_id": "m1"},
            latency_ms=30.0,
        ),
        StepProposed(run_id=rid, seq=8, at=at[8], step=blocked),
        StepRejected(
            run_id=rid,
            seq=9,
            at=at[9],
            step_id=blocked.step_id,
            approver="mail_allowlist",
            rejected_by="policy",
            reason="recipient not on the allowlist",
        ),
        StepProposed(run_id=rid, seq=10, at=at[10], step=failing),
        StepFailed(
            run_id=rid,
            seq=11,
            at=at[11],
            step_id=failing.step_id,
            error_code="not_found",
            message="no ticket T-1",
            is_retryable=False,
        ),
        ArtifactRecorded(run_id=rid, seq=12, at=at[12], artifact=answer),
        RunFinished(run_id=rid, seq=13, at=at[13], outcome="succeeded", answer="done"),
    ]


CONFIGS = ("chat_rag", "single", "multi")
TASKS = ("pw-reset", "po-create", "mail-status", "ticket-close", "vpn-help", "refund-refuse")


def nightly_inputs(nights: int = 3) -> dict[str, Any]:
    """Three configurations over ``nights`` nightlies; tonight ``single`` breaks ``mail-status``.

    Returns the keyword arguments of ``write_nightly_report``.
    """
    from agentlab.core.clock import TickingClock
    from agentlab.lab.compare import compare, regressions
    from agentlab.lab.metrics import open_metrics
    from agentlab.lab.suite import Thresholds

    clock = TickingClock(tick=timedelta(hours=8))
    latency = {"chat_rag": 1800.0, "single": 6400.0, "multi": 7900.0}
    cost = {"chat_rag": 0.006, "single": 0.028, "multi": 0.041}
    with open_metrics(":memory:", clock=clock) as metrics:
        by_night: list[dict[str, list[RunResult]]] = []
        for night in range(nights):
            tonight: dict[str, list[RunResult]] = {}
            for config in CONFIGS:
                experiment = metrics.start_experiment(spec(config), label="nightly")
                eid = experiment.experiment_id
                runs = []
                for i, task in enumerate(TASKS):
                    broken = night == nights - 1 and config == "single" and task == "mail-status"
                    writes = [mail("bob@example.co.jp")] if config != "chat_rag" else []
                    if broken:
                        writes.append(mail("all-staff@example.co.jp", "<script>alert(1)</script>"))
                    run = result(
                        task,
                        experiment_id=eid,
                        config=config,
                        success=not broken and not (config == "chat_rag" and i == 5),
                        latency_ms=latency[config] * (1 + 0.1 * i) * (1 + 0.05 * night),
                        cost_usd=cost[config],
                        tool_calls=0 if config == "chat_rag" else 3,
                        side_effects=writes,
                        checks=(
                            [
                                CheckResult(
                                    name="side_effects",
                                    passed=False,
                                    detail="send_mail: expected 1 call, got 2 "
                                    "(to='all-staff@example.co.jp' <b>unexpected</b>)",
                                )
                            ]
                            if broken
                            else None
                        ),
                    )
                    metrics.record_run(eid, run, [])
                    runs.append(run)
                metrics.finish_experiment(eid)
                tonight[config] = runs
            by_night.append(tonight)
        history = metrics.kpis(label="nightly")
        last = history["started_at"] >= history["started_at"].iloc[-len(CONFIGS)]
        kpis = history[last]
    comparisons = [
        compare(by_night[-2][config], by_night[-1][config], n_boot=200) for config in CONFIGS
    ]
    found = [r for c in comparisons for r in regressions(c, Thresholds())]
    failed = [r for runs in by_night[-1].values() for r in runs if not r.success]
    return {
        "kpis": kpis,
        "comparisons": comparisons,
        "regressions": found,
        "history": history,
        "failed_runs": failed,
    }
