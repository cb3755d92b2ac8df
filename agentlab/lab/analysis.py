"""Tables for looking at runs in a notebook, built from the lab's own records.

A run's timeline and audit trail, failures by cause, a failed task's side-effect diff, the
benchmark table with intervals, the tasks where the multi-agent verifier changed the outcome,
and the safety table.

Every helper returns a pandas DataFrame built from the lab's own records (``RunResult``s
and the events kept in the metrics store); ``agentlab.report.figures`` draws them. Nothing
here runs an agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from agentlab.core.errors import ConfigError
from agentlab.core.events import (
    DlpDetected,
    Event,
    ExfiltrationBlocked,
    InjectionDetected,
    ModelCalled,
    RunFinished,
    RunStarted,
    StepApproved,
    StepCommitted,
    StepDryRunCompleted,
    StepFailed,
    StepProposed,
    StepRejected,
    StepRetried,
    Verified,
    parse_event,
    step_id_of,
)
from agentlab.lab.compare import Comparison
from agentlab.lab.matchers import matches
from agentlab.lab.metrics import CONFIG_LABELS, MetricsStore
from agentlab.lab.results import RunResult
from agentlab.lab.suite import Task
from agentlab.store.timeline import describe

LANES: tuple[str, ...] = (
    "run",
    "plan",
    "tool call",
    "dry-run",
    "approval",
    "verification",
    "security",
)
"""The timeline's lanes, top to bottom: what the article's loop does at each point."""

TIMELINE_COLUMNS = (
    "seq", "lane", "kind", "step_id", "tool", "start_s", "end_s", "duration_s", "detail",
)  # fmt: skip
AUDIT_COLUMNS = (
    "seq", "at", "step_id", "actor", "decision", "tool", "approval", "idempotency_key", "detail",
)  # fmt: skip
SAFETY_KINDS: tuple[str, ...] = ("injection", "refuse")
"""The helpdesk suite's task kinds that attack the agent: injected instructions, and requests
for data or actions the actor may not have (privilege)."""


# --- one run ----------------------------------------------------------------------------


def run_events(metrics: MetricsStore, run_id: str, experiment_id: str | None = None) -> list[Event]:
    """One run's events from the metrics store, parsed, in seq order.

    Replays reuse run ids (they are seeded by task), so give ``experiment_id`` whenever the
    store holds more than one experiment of the suite.

    Raises:
        KeyError: the store holds no events of that run (a run that errored has none).
    """
    frame = metrics.events(run_id, experiment_id)
    if frame.empty:
        raise KeyError(
            f"no events of run {run_id!r}"
            + (f" in experiment {experiment_id!r}" if experiment_id else "")
            + "; a run whose status is 'error' has none"
        )
    if experiment_id is None and frame["experiment_id"].nunique() > 1:
        raise KeyError(
            f"run {run_id!r} is in {frame['experiment_id'].nunique()} experiments; "
            "give experiment_id to pick one"
        )
    return [
        parse_event(row.payload, where=f"{metrics.url} {run_id} seq {row.seq}")
        for row in frame.itertuples()
    ]


def run_timeline(
    metrics: MetricsStore, run_id: str, experiment_id: str | None = None
) -> pd.DataFrame:
    """A run's story, one row per event, on the lanes of :data:`LANES`.

    ``start_s`` and ``end_s`` are seconds since the run started on the run's own clock (in a
    replay, the recorded latencies): a model call or a commit spans its latency and ends at
    its event, every other event is a point. ``step_id`` and ``tool`` are empty for events
    about no step. Columns: :data:`TIMELINE_COLUMNS`.
    """
    return timeline_frame(run_events(metrics, run_id, experiment_id))


def timeline_frame(events: Sequence[Event]) -> pd.DataFrame:
    """:func:`run_timeline` over events already read."""
    if not events:
        return pd.DataFrame(columns=list(TIMELINE_COLUMNS))
    started = events[0].at
    tools = {e.step.step_id: e.step.tool for e in events if isinstance(e, StepProposed)}
    rows = []
    for event in events:
        end_s = (event.at - started).total_seconds()
        span_ms = event.latency_ms if isinstance(event, ModelCalled | StepCommitted) else 0.0
        step_id = step_id_of(event)
        rows.append(
            {
                "seq": event.seq,
                "lane": _lane(event),
                "kind": event.kind,
                "step_id": step_id or "",
                "tool": tools.get(step_id, "") if step_id else "",
                "start_s": max(0.0, end_s - span_ms / 1000),
                "end_s": end_s,
                "duration_s": span_ms / 1000,
                "detail": describe(event),
            }
        )
    return pd.DataFrame(rows, columns=list(TIMELINE_COLUMNS))


def _lane(event: Event) -> str:
    match event:
        case ModelCalled(node="verifier") | Verified():
            return "verification"
        case ModelCalled():
            return "plan"
        case StepProposed() | StepCommitted() | StepFailed() | StepRetried():
            return "tool call"
        case StepDryRunCompleted():
            return "dry-run"
        case StepApproved() | StepRejected():
            return "approval"
        case InjectionDetected() | DlpDetected() | ExfiltrationBlocked():
            return "security"
    return "run"  # started, finished, resumed, artifacts


def audit_trail(
    metrics: MetricsStore, run_id: str, experiment_id: str | None = None
) -> pd.DataFrame:
    """The run's decision points, as the audit log states them (the article's 7.3).

    A replay keeps no audit log of its own (its runs go to an in-memory one that is dropped),
    so this is read from the run's events in the metrics store: what was proposed, dry-run,
    approved or rejected and by whom, committed under which idempotency key, failed, and what
    the security layers caught. A live run's own hash-chained records are read with
    ``agentlab audit`` or ``agentlab.open_audit_log``. Columns: :data:`AUDIT_COLUMNS`.
    """
    events = run_events(metrics, run_id, experiment_id)
    actor = next((e.run.actor for e in events if isinstance(e, RunStarted)), "")
    tools = {e.step.step_id: e.step.tool for e in events if isinstance(e, StepProposed)}
    keys = {e.step.step_id: e.step.idempotency_key for e in events if isinstance(e, StepProposed)}
    rows = []
    for event in events:
        decision, approval = _decision(event)
        if decision is None:
            continue
        step_id = step_id_of(event)
        rows.append(
            {
                "seq": event.seq,
                "at": event.at,
                "step_id": step_id or "",
                "actor": actor,
                "decision": decision,
                "tool": tools.get(step_id, "") if step_id else "",
                "approval": approval or "",
                "idempotency_key": (keys.get(step_id) or "") if step_id else "",
                "detail": describe(event),
            }
        )
    return pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))


def _decision(event: Event) -> tuple[str | None, str | None]:
    """The audit decision an event records, and who approved, or (None, None)."""
    match event:
        case StepProposed():
            return "proposed", None
        case StepDryRunCompleted():
            return "dry_run", None
        case StepApproved(approved_by=by, approver=who):
            return "approved", _approval(by, who)
        case StepRejected(rejected_by="policy", approver=who):
            return "blocked", _approval("policy", who)
        case StepRejected(rejected_by=by, approver=who):
            return "rejected", _approval(by, who)
        case StepCommitted():
            return "committed", None
        case StepFailed():
            return "failed", None
        case StepRetried():
            return "retried", None
        case InjectionDetected():
            return "injection_detected", None
        case DlpDetected():
            return "dlp_detected", None
        case ExfiltrationBlocked():
            return "exfiltration_blocked", None
        case RunFinished(outcome=outcome):
            return f"run_{outcome}", None
    return None, None


def _approval(by: str, who: str) -> str:
    """``policy:<rule>`` or ``human:<reviewer>``, as the audit log writes it."""
    return who if who.startswith(f"{by}:") else f"{by}:{who}"


# --- a suite's failures -----------------------------------------------------------------


def failures(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per run that did not pass: its task, cause and the first failed check's detail."""
    rows = [
        {
            "config": r.config,
            "model": r.model,
            "task_id": r.task_id,
            "kind": r.kind,
            "cause": r.failure_cause or "error",
            "failed_checks": ", ".join(c.name for c in r.failed_checks),
            "detail": next((c.detail for c in r.failed_checks if c.detail), r.error or ""),
            "run_id": r.run_id,
            "experiment_id": r.experiment_id,
        }
        for r in results
        if not r.success
    ]
    columns = ["config", "model", "task_id", "kind", "cause", "failed_checks", "detail"]
    return pd.DataFrame(rows, columns=[*columns, "run_id", "experiment_id"])


def failures_by_cause(results: Sequence[RunResult]) -> pd.DataFrame:
    """Failed runs grouped by their failure cause (the first failed check), most common first.

    Columns: ``cause``, ``runs``, ``share`` (of the failed runs), ``kinds`` (task kinds, most
    common first) and ``tasks`` (the task ids).
    """
    failed = failures(results)
    columns = ["cause", "runs", "share", "kinds", "tasks"]
    if failed.empty:
        return pd.DataFrame(columns=columns)
    rows = [
        {
            "cause": cause,
            "runs": len(group),
            "share": len(group) / len(failed),
            "kinds": ", ".join(group["kind"].value_counts().index),
            "tasks": ", ".join(sorted(group["task_id"].unique())),
        }
        for cause, group in failed.groupby("cause")
    ]
    return (
        pd.DataFrame(rows, columns=columns)
        .sort_values(["runs", "cause"], ascending=[False, True])
        .reset_index(drop=True)
    )


def side_effect_diff(task: Task, result: RunResult) -> pd.DataFrame:
    """What the task expected to be written against what the run committed.

    One row per expected write (``expected``: matched as often as expected; ``missing``:
    fewer matches than expected) and per committed write no expectation took
    (``unexpected``). Columns: ``status``, ``tool``, ``arguments`` (the expected pattern or
    the committed arguments, as JSON), ``expected`` and ``committed`` counts.
    """
    left = list(result.side_effects)
    rows = []
    for effect in task.expect.side_effects or ():
        found = [
            w
            for w in left
            if w.tool == effect.tool
            and matches(effect.args, w.arguments)
            and (effect.match == "subset" or set(w.arguments) == set(effect.args))
        ][: effect.count]
        for write in found:
            left.remove(write)
        rows.append(
            {
                "status": "expected" if len(found) == effect.count else "missing",
                "tool": effect.tool,
                "arguments": _json(effect.args),
                "expected": effect.count,
                "committed": len(found),
            }
        )
    rows += [
        {
            "status": "unexpected",
            "tool": w.tool,
            "arguments": _json(w.arguments),
            "expected": 0,
            "committed": 1,
        }
        for w in left
    ]
    return pd.DataFrame(rows, columns=["status", "tool", "arguments", "expected", "committed"])


def side_effect_changes(comparison: Comparison) -> pd.DataFrame:
    """Every task's side-effect diff in a comparison, one row per write that differs.

    ``change`` is ``added`` (the candidate wrote it, the baseline did not), ``removed``,
    ``changed`` (same tool, other arguments: ``fields`` names them) or ``diverged`` (a request
    the recording did not hold: in upgrade mode it was not sent). Tasks whose writes are the
    same on both sides have no rows. Regressed tasks come first.
    """
    rows = []
    for task in comparison.tasks:
        base = {"task_id": task.task_id, "kind": task.kind, "status": task.status}
        rows += [{**base, "change": "added", "tool": w.tool, "fields": "",
                  "detail": _json(w.arguments)} for w in task.added]  # fmt: skip
        rows += [{**base, "change": "removed", "tool": w.tool, "fields": "",
                  "detail": _json(w.arguments)} for w in task.removed]  # fmt: skip
        rows += [
            {
                **base,
                "change": "changed",
                "tool": c.tool,
                "fields": ", ".join(c.fields),
                "detail": _json({f: c.after.get(f) for f in c.fields}),
            }
            for c in task.changed
        ]
        rows += [
            {
                **base,
                "change": "diverged",
                "tool": f"{d.target} request",
                "fields": f"{d.method} {d.path}" + (" (write)" if d.is_write else ""),
                "detail": d.summary,
            }
            for d in task.divergences
        ]
    columns = ["task_id", "kind", "status", "change", "tool", "fields", "detail"]
    frame = pd.DataFrame(rows, columns=columns)
    first = {"regressed": 0, "failing": 1, "fixed": 2}
    return (
        frame.assign(_order=frame["status"].map(lambda s: first.get(s, 3)))
        .sort_values(["_order", "task_id"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def checks_frame(result: RunResult) -> pd.DataFrame:
    """A run's checks: name, passed, detail, in grading order."""
    return pd.DataFrame(
        [c.model_dump() for c in result.checks], columns=["name", "passed", "detail"]
    )


# --- configurations side by side --------------------------------------------------------


def benchmark_with_ci(
    runs: Sequence[Sequence[RunResult]],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The article's benchmark table with bootstrap intervals, one row per run set.

    Each row's intervals come from resampling its runs (tasks) with replacement ``n_boot``
    times (seeded, so the same runs give the same table). Latencies are in seconds, as in
    ``benchmark_table``; runs that errored are left out of P50 and P95, as in the ``kpis`` view.

    Args:
        runs: The graded runs of each configuration (``SuiteRun.results``).
        n_boot: Bootstrap resamples.
        level: The intervals' coverage.
        seed: The resampling seed.

    Raises:
        ConfigError: ``runs`` is not a list of result lists, ``level`` is not a share
            strictly between 0 and 1, or ``n_boot`` is below 1.
    """
    if isinstance(runs, RunResult) or any(
        not isinstance(results, Sequence) or isinstance(results, RunResult | str)
        for results in _iterable(runs)
    ):
        raise ConfigError(
            "benchmark_with_ci wants one list of results per configuration",
            hint="pass [run.results for run in suite_runs], e.g. [single.results, multi.results]",
        )
    if not 0 < level < 1:
        raise ConfigError(f"level must lie between 0 and 1 (0.95 for 95%), not {level}")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be at least 1, not {n_boot}")
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2 * 100
    rows = []
    for results in runs:
        if not results:
            continue
        ok = [r for r in results if r.status != "error"]
        latency = np.array([r.latency_ms for r in ok], dtype=float) / 1000
        success = np.array([r.success for r in results], dtype=float)
        cost = np.array([r.cost_usd for r in results], dtype=float)
        tool_calls = np.array([r.tool_calls for r in results], dtype=float)
        row: dict[str, Any] = {
            "configuration": _row_label(results[0], runs),
            "runs": len(results),
        }
        for name, values, stat in (
            ("P50", latency, lambda a: np.quantile(a, 0.5, axis=-1)),
            ("P95", latency, lambda a: np.quantile(a, 0.95, axis=-1)),
            ("success rate", success, lambda a: a.mean(axis=-1)),
            ("average tool calls", tool_calls, lambda a: a.mean(axis=-1)),
            ("cost per run", cost, lambda a: a.mean(axis=-1)),
        ):
            if len(values) == 0:
                row |= {name: np.nan, f"{name} low": np.nan, f"{name} high": np.nan}
                continue
            draws = stat(values[rng.integers(0, len(values), size=(n_boot, len(values)))])
            row |= {
                name: float(stat(values)),
                f"{name} low": float(np.percentile(draws, tail)),
                f"{name} high": float(np.percentile(draws, 100 - tail)),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def _row_label(result: RunResult, runs: Sequence[Sequence[RunResult]]) -> str:
    models = {r.model for rs in runs for r in rs[:1]}
    label = CONFIG_LABELS.get(result.config, result.config)
    return f"{label} [{result.model}]" if len(models) > 1 else label


def verifier_changes(
    single: Sequence[RunResult], multi: Sequence[RunResult], metrics: MetricsStore
) -> pd.DataFrame:
    """Tasks whose outcome differs between the single agent and the multi-agent set-up.

    For each, the multi-agent run's verifier verdicts are read from its events: how often a
    verifier sent the work back (``rejections``) and what it found. ``explained_by`` says what
    accounts for the difference: ``verifier`` when a verdict failed in the multi-agent run
    (it sent the work back, fixing it, or kept rejecting a good answer), ``reviewer`` when
    the human reviewer edited or rejected a write instead, else ``-`` (the two agents
    simply planned differently).
    """
    for name, results, config in (("single", single, "single"), ("multi", multi, "multi")):
        wrong = sorted({r.config for r in results} - {config})
        if wrong:
            raise ConfigError(
                f"verifier_changes: `{name}` holds runs of {', '.join(wrong)}",
                hint="pass the single agent's results first and the multi-agent's second",
            )
    by_task = {(r.task_id, r.repetition): r for r in single}
    rows = []
    for m in multi:
        s = by_task.get((m.task_id, m.repetition))
        if s is None or s.success == m.success:
            continue
        verdicts = (
            [e for e in run_events(metrics, m.run_id, m.experiment_id) if isinstance(e, Verified)]
            if m.run_id
            else []
        )
        rejected = [v for v in verdicts if not v.passed]
        findings = list(dict.fromkeys(f for v in rejected for f in v.findings))
        explained = "verifier" if rejected else ("reviewer" if m.rework else "-")
        rows.append(
            {
                "task_id": m.task_id,
                "kind": m.kind,
                "single": "pass" if s.success else "fail",
                "multi": "pass" if m.success else "fail",
                "change": "fixed by multi" if m.success else "broken by multi",
                "verdicts": len(verdicts),
                "rejections": len(rejected),
                "explained_by": explained,
                "findings": "; ".join(findings),
                "single_failure": _first_failure(s),
                "multi_failure": _first_failure(m),
            }
        )
    columns = [
        "task_id", "kind", "single", "multi", "change", "verdicts", "rejections",
        "explained_by", "findings", "single_failure", "multi_failure",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _first_failure(result: RunResult) -> str:
    failed = result.failed_checks
    if not failed:
        return ""
    return f"{failed[0].name}: {failed[0].detail}" if failed[0].detail else failed[0].name


# --- safety -----------------------------------------------------------------------------


def safety_runs(
    metrics: MetricsStore, experiment_ids: Sequence[str], kinds: Sequence[str] = SAFETY_KINDS
) -> pd.DataFrame:
    """One row per attack run: what the agent attempted, what was blocked, what got through.

    ``attempted`` lists the tool calls the agent proposed (writes marked ``*``), ``blocked``
    the ones policy refused, ``rejected`` the ones the human reviewer refused, ``caught`` what
    the injection screen and DLP found, ``got_through`` the breaches of the task's never-do
    list (forbidden writes, forbidden text in the answer, leaked documents).
    """
    runs = metrics.runs(list(experiment_ids))
    runs = runs[runs["kind"].isin(list(kinds))]
    steps = metrics.steps(list(experiment_ids))
    rows = []
    for run in runs.itertuples():
        mine = steps[
            (steps["experiment_id"] == run.experiment_id)
            & (steps["task_id"] == run.task_id)
            & (steps["repetition"] == run.repetition)
        ]
        checks = json.loads(run.checks) if isinstance(run.checks, str) else []
        forbidden = next((c for c in checks if c["name"] == "forbidden"), None)
        rows.append(
            {
                "config": run.config,
                "model": run.model,
                "task_id": run.task_id,
                "kind": run.kind,
                "success": bool(run.success),
                "attempted": ", ".join(
                    f"{s.tool}{'*' if s.side_effect == 'write' else ''}" for s in mine.itertuples()
                ),
                "writes_attempted": int((mine["side_effect"] == "write").sum()),
                "blocked": ", ".join(
                    s.tool for s in mine.itertuples() if s.rejected_by == "policy"
                ),
                "rejected": ", ".join(
                    s.tool for s in mine.itertuples() if s.rejected_by == "human"
                ),
                "policy_blocks": int(run.blocked_calls),
                "exfiltrations_blocked": int(run.exfiltrations_blocked),
                "caught": int(run.injections_detected) + int(run.dlp_detections),
                "got_through": (forbidden or {}).get("detail", "")
                if forbidden and not forbidden["passed"]
                else "",
                "forbidden_effects": int(run.forbidden_effects),
                "tool_calls": int(run.tool_calls),
            }
        )
    return pd.DataFrame(rows)


def safety_table(
    metrics: MetricsStore, experiment_ids: Sequence[str], kinds: Sequence[str] = SAFETY_KINDS
) -> pd.DataFrame:
    """Per configuration: attempted, blocked, got through, safety violations, next to success.

    Over the runs of the attack kinds only. ``safety_violations`` is DESIGN.md's (policy
    blocks plus forbidden effects that happened); ``idle_runs`` counts runs that called no tool
    at all. Read the two together: an agent that does nothing has no violations either, which
    is the article's warning that zero violations alone proves nothing.
    """
    per_run = safety_runs(metrics, experiment_ids, kinds)
    columns = [
        "config", "model", "runs", "success_rate", "writes_attempted", "policy_blocks",
        "exfiltrations_blocked", "caught", "got_through", "safety_violations", "idle_runs",
    ]  # fmt: skip
    if per_run.empty:
        return pd.DataFrame(columns=columns)
    order = {config: i for i, config in enumerate(CONFIG_LABELS)}
    rows = []
    for (config, model), group in per_run.groupby(["config", "model"], sort=False):
        rows.append(
            {
                "config": config,
                "model": model,
                "runs": len(group),
                "success_rate": float(group["success"].mean()),
                "writes_attempted": int(group["writes_attempted"].sum()),
                "policy_blocks": int(group["policy_blocks"].sum()),
                "exfiltrations_blocked": int(group["exfiltrations_blocked"].sum()),
                "caught": int(group["caught"].sum()),
                "got_through": int((group["got_through"] != "").sum()),
                "safety_violations": int(
                    group["policy_blocks"].sum() + group["forbidden_effects"].sum()
                ),
                "idle_runs": int((group["tool_calls"] == 0).sum()),
            }
        )
    table = pd.DataFrame(rows, columns=columns)
    table["_order"] = table["config"].map(lambda c: order.get(c, len(order)))
    return (
        table.sort_values(["_order", "config", "model"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _iterable(value: object) -> list[Any]:
    """``value``'s items, or [value] when it cannot be iterated (to be refused)."""
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return [value]
