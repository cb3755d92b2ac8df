"""Compare two sets of graded runs: metric deltas with confidence, pass^k, side-effect diffs.

The article's advice for model upgrades is to read side-effect diffs before success rates;
:func:`compare` gives both. Each metric's delta (candidate minus baseline) comes with a 95%
bootstrap confidence interval: tasks are resampled with replacement, the same draw on both
sides for a task both sides ran (a paired bootstrap, so task difficulty cancels out), each
side's own draw for tasks only one side ran. The seed makes it deterministic.

:func:`regressions` turns a comparison and a suite's :class:`~agentlab.lab.suite.Thresholds`
into what ``nightly`` fails on, each naming the metric or the task, the values, and for a
task its failing checks and its side-effect diff.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, JsonValue

from agentlab.lab.results import CheckResult, Divergence, RunResult, SideEffectRecord
from agentlab.lab.suite import Thresholds

QUANTILES = (0.5, 0.95)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


@dataclass(frozen=True)
class MetricSpec:
    """One measure :func:`compare` reports."""

    name: str
    label: str
    higher_is_better: bool
    unit: Literal["rate", "ms", "usd", "count", "calls"]


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("success_rate", "success rate", True, "rate"),
    MetricSpec("rework_rate", "rework rate", False, "rate"),
    MetricSpec("cost_per_run", "cost per run", False, "usd"),
    MetricSpec("p50_latency_ms", "P50 latency", False, "ms"),
    MetricSpec("p95_latency_ms", "P95 latency", False, "ms"),
    MetricSpec("tool_failure_rate", "tool failure rate", False, "rate"),
    MetricSpec("safety_violations", "safety violations", False, "count"),
    MetricSpec("policy_blocks", "policy blocks", False, "count"),
    MetricSpec("forbidden_effects", "forbidden effects", False, "count"),
    MetricSpec("avg_tool_calls", "average tool calls", False, "calls"),
    MetricSpec("external_calls", "external calls per run", False, "calls"),
)
"""The measures, as DESIGN.md defines them; counts are totals over a side's runs."""
_SPECS = {spec.name: spec for spec in METRICS}


class MetricDelta(_Model):
    """One measure on both sides, the difference, and its 95% bootstrap interval."""

    name: str
    label: str
    baseline: float
    candidate: float
    delta: float
    """Candidate minus baseline."""
    ci_low: float
    ci_high: float
    higher_is_better: bool
    unit: str

    @property
    def relative_change(self) -> float | None:
        """``delta / baseline``; None when the baseline is 0."""
        return self.delta / self.baseline if self.baseline else None

    @property
    def is_significant(self) -> bool:
        """True when the interval leaves out 0: the change is more than resampling noise."""
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def is_worse(self) -> bool:
        """True when the candidate moved the wrong way (by any amount)."""
        return self.delta < 0 if self.higher_is_better else self.delta > 0


class PassK(_Model):
    """pass^k and pass@k over repeated runs, both sides, for one k.

    pass^k: the chance that all of k runs of a task pass (tau-bench's reliability measure);
    pass@k: that at least one does. Both are estimated per task from its n runs with c
    passes, as C(c, k) / C(n, k) and 1 - C(n - c, k) / C(n, k), and averaged over the tasks
    with at least k runs.
    """

    k: int
    baseline_pass_hat_k: float | None
    candidate_pass_hat_k: float | None
    baseline_pass_at_k: float | None
    candidate_pass_at_k: float | None
    tasks: int
    """Tasks with at least k runs on the candidate's side."""


class ChangedCall(_Model):
    """A committed write both sides made to the same tool, with other arguments."""

    tool: str
    before: dict[str, JsonValue]
    after: dict[str, JsonValue]
    fields: tuple[str, ...]
    """The arguments that differ."""


_TASK_COLUMNS = [
    "task_id", "kind", "status", "baseline_passed", "baseline_runs", "candidate_passed",
    "candidate_runs", "failing_checks", "added", "removed", "changed", "divergences",
]  # fmt: skip

TaskStatus = Literal["regressed", "fixed", "passing", "failing", "new", "missing"]


class TaskDiff(_Model):
    """One task on both sides: outcomes, the failing checks, and the side-effect diff."""

    task_id: str
    kind: str
    status: TaskStatus
    """``regressed``: every baseline run passed, a candidate run fails; ``fixed``: the other
    way; ``new`` / ``missing``: only the candidate / only the baseline ran it."""
    baseline_runs: int
    baseline_passed: int
    candidate_runs: int
    candidate_passed: int
    baseline_repetition: int | None
    """The baseline run the diff starts from (the same repetition when it exists)."""
    candidate_repetition: int | None
    """The candidate run the diff is about: its first failing run, else its first."""
    failing_checks: tuple[CheckResult, ...] = ()
    """That candidate run's failed checks."""
    added: tuple[SideEffectRecord, ...] = ()
    """Committed writes the candidate made and the baseline did not."""
    removed: tuple[SideEffectRecord, ...] = ()
    """Committed writes the baseline made and the candidate did not."""
    changed: tuple[ChangedCall, ...] = ()
    divergences: tuple[Divergence, ...] = ()
    """The candidate run's requests its recording did not hold, or left unplayed."""
    error: str | None = None
    """Why the candidate run could not be carried out, if it could not."""

    @property
    def has_effect_diff(self) -> bool:
        """True when the committed writes differ, or the candidate diverged from a recording."""
        return bool(self.added or self.removed or self.changed or self.divergences)

    @property
    def candidate_pass_rate(self) -> float | None:
        """Passed candidate runs over candidate runs."""
        return self.candidate_passed / self.candidate_runs if self.candidate_runs else None

    @property
    def baseline_pass_rate(self) -> float | None:
        """Passed baseline runs over baseline runs."""
        return self.baseline_passed / self.baseline_runs if self.baseline_runs else None


class Comparison(_Model):
    """Everything :func:`compare` found, with DataFrame views for notebooks."""

    baseline_label: str
    candidate_label: str
    suite: str
    config: str
    """The candidate's configuration."""
    model: str
    """The candidate's model."""
    baseline_model: str
    baseline_runs: int
    candidate_runs: int
    n_boot: int
    seed: int
    metrics: tuple[MetricDelta, ...]
    pass_k: tuple[PassK, ...]
    tasks: tuple[TaskDiff, ...]

    def metric(self, name: str) -> MetricDelta:
        """One measure's delta by name (``success_rate``, ``p95_latency_ms``, ...)."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"no metric {name!r}; known: {', '.join(m.name for m in self.metrics)}")

    def task(self, task_id: str) -> TaskDiff:
        """One task's diff by id."""
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise KeyError(f"no task {task_id!r} on either side")

    @property
    def regressed_tasks(self) -> list[TaskDiff]:
        """Tasks that passed in the baseline and fail now."""
        return [task for task in self.tasks if task.status == "regressed"]

    def metrics_frame(self) -> pd.DataFrame:
        """One row per measure: both sides, the delta, its interval, whether it got worse."""
        return pd.DataFrame(
            [
                {
                    "metric": m.name,
                    "baseline": m.baseline,
                    "candidate": m.candidate,
                    "delta": m.delta,
                    "ci_low": m.ci_low,
                    "ci_high": m.ci_high,
                    "relative_change": m.relative_change,
                    "is_significant": m.is_significant,
                    "is_worse": m.is_worse,
                }
                for m in self.metrics
            ]
        )

    def tasks_frame(self) -> pd.DataFrame:
        """One row per task: outcomes on both sides and the size of its side-effect diff."""
        return pd.DataFrame(
            [
                {
                    "task_id": t.task_id,
                    "kind": t.kind,
                    "status": t.status,
                    "baseline_passed": t.baseline_passed,
                    "baseline_runs": t.baseline_runs,
                    "candidate_passed": t.candidate_passed,
                    "candidate_runs": t.candidate_runs,
                    "failing_checks": ", ".join(c.name for c in t.failing_checks),
                    "added": len(t.added),
                    "removed": len(t.removed),
                    "changed": len(t.changed),
                    "divergences": len(t.divergences),
                }
                for t in self.tasks
            ],
            columns=_TASK_COLUMNS,
        )

    def pass_k_frame(self) -> pd.DataFrame:
        """One row per k: pass^k and pass@k on both sides."""
        return pd.DataFrame([p.model_dump() for p in self.pass_k])


class Regression(_Model):
    """Something ``nightly`` fails on: a measure beyond its threshold, or a task that broke."""

    kind: Literal["metric", "task"]
    name: str
    """The measure (``p95_latency_ms``) or the task id."""
    suite: str
    config: str
    model: str
    baseline: float | None
    current: float | None
    """For a task: the share of its runs that passed."""
    limit: str
    """The threshold, in words."""
    message: str
    """One line for a terminal: what, where, by how much, and for a task why."""
    task: TaskDiff | None = None
    """For a task: its failing checks and side-effect diff."""

    @property
    def anchor(self) -> str:
        """The id of the report section that shows it."""
        if self.kind == "task":
            return task_anchor(self.config, self.model, self.name)
        return metric_anchor(self.config, self.model)


def task_anchor(config: str, model: str, task_id: str) -> str:
    """The HTML id of a task's section in the nightly report."""
    return "task-" + _slug(f"{config}--{model}--{task_id}")


def metric_anchor(config: str, model: str) -> str:
    """The HTML id of a comparison's metric table in the nightly report."""
    return "compare-" + _slug(f"{config}--{model}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")


# --- compare ---------------------------------------------------------------------------------


def compare(
    baseline: Sequence[RunResult],
    candidate: Sequence[RunResult],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    baseline_label: str | None = None,
    candidate_label: str | None = None,
) -> Comparison:
    """Compare a candidate's graded runs with a baseline's.

    Args:
        baseline: The runs compared against (a suite's earlier experiment, another model).
        candidate: The runs under test.
        n_boot: Bootstrap resamples for the confidence intervals.
        seed: Seeds the resampling: the same inputs and seed give the same intervals.
        baseline_label: How to name the baseline (default ``config · model · mode (id)``).
        candidate_label: How to name the candidate.

    Raises:
        ValueError: a side has no runs, or ``n_boot`` is below 1.
    """
    if not baseline or not candidate:
        raise ValueError("compare needs at least one run on each side")
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    base, cand = _Side.of(baseline), _Side.of(candidate)
    common = sorted(set(base.tasks) & set(cand.tasks))
    base_order = common + sorted(set(base.tasks) - set(common))
    cand_order = common + sorted(set(cand.tasks) - set(common))
    base_arrays, cand_arrays = base.arrays(base_order), cand.arrays(cand_order)

    rng = np.random.default_rng(seed)
    paired = _draw(rng, n_boot, len(common))
    base_weights = np.hstack([paired, _draw(rng, n_boot, len(base_order) - len(common))])
    cand_weights = np.hstack([paired, _draw(rng, n_boot, len(cand_order) - len(common))])

    base_point = base_arrays.measures(np.ones((1, len(base_order))))
    cand_point = cand_arrays.measures(np.ones((1, len(cand_order))))
    base_boot = base_arrays.measures(base_weights)
    cand_boot = cand_arrays.measures(cand_weights)
    metrics = []
    for spec in METRICS:
        deltas = cand_boot[spec.name] - base_boot[spec.name]
        deltas = deltas[~np.isnan(deltas)]
        low, high = (
            (float(v) for v in np.percentile(deltas, [2.5, 97.5]))
            if deltas.size
            else (math.nan,) * 2
        )
        b, c = float(base_point[spec.name][0]), float(cand_point[spec.name][0])
        metrics.append(
            MetricDelta(
                name=spec.name,
                label=spec.label,
                baseline=b,
                candidate=c,
                delta=c - b,
                ci_low=low,
                ci_high=high,
                higher_is_better=spec.higher_is_better,
                unit=spec.unit,
            )
        )
    first_base, first_cand = baseline[0], candidate[0]
    return Comparison(
        baseline_label=baseline_label or _label(first_base),
        candidate_label=candidate_label or _label(first_cand),
        suite=first_cand.suite,
        config=first_cand.config,
        model=first_cand.model,
        baseline_model=first_base.model,
        baseline_runs=len(baseline),
        candidate_runs=len(candidate),
        n_boot=n_boot,
        seed=seed,
        metrics=tuple(metrics),
        pass_k=_pass_k(baseline, candidate),
        tasks=tuple(_task_diffs(base, cand)),
    )


def _label(result: RunResult) -> str:
    return f"{result.config} · {result.model} · {result.mode} ({result.experiment_id})"


def _draw(rng: np.random.Generator, n_boot: int, n_tasks: int) -> np.ndarray:
    """How often each of ``n_tasks`` tasks is drawn, in ``n_boot`` resamples of that many."""
    if n_tasks == 0:
        return np.zeros((n_boot, 0))
    picks = rng.integers(0, n_tasks, size=(n_boot, n_tasks))
    flat = (picks + n_tasks * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_tasks).reshape(n_boot, n_tasks).astype(float)


_SUMMED: dict[str, Callable[[RunResult], float]] = {
    "runs": lambda r: 1,
    "success": lambda r: r.success,
    "rework": lambda r: r.rework,
    "cost": lambda r: r.cost_usd,
    "tool_calls": lambda r: r.tool_calls,
    "tool_failures": lambda r: r.tool_failures,
    "blocked": lambda r: r.blocked_calls,
    "forbidden": lambda r: r.forbidden_effects,
    "external": lambda r: r.external_calls,
}


@dataclass(frozen=True)
class _Arrays:
    """One side's per-task sums, and its latencies with the task each belongs to."""

    sums: dict[str, np.ndarray]
    latency: np.ndarray
    latency_task: np.ndarray

    def measures(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Every measure for each row of ``weights`` (how often each task counts)."""
        total = {name: weights @ values for name, values in self.sums.items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            runs = total["runs"]
            out = {
                "success_rate": total["success"] / runs,
                "rework_rate": total["rework"] / runs,
                "cost_per_run": total["cost"] / runs,
                "tool_failure_rate": np.where(
                    total["tool_calls"] > 0, total["tool_failures"] / total["tool_calls"], 0.0
                ),
                "safety_violations": total["blocked"] + total["forbidden"],
                "policy_blocks": total["blocked"],
                "forbidden_effects": total["forbidden"],
                "avg_tool_calls": total["tool_calls"] / runs,
                "external_calls": total["external"] / runs,
            }
        quantiles = _weighted_quantiles(self.latency, weights[:, self.latency_task], QUANTILES)
        out["p50_latency_ms"], out["p95_latency_ms"] = quantiles[:, 0], quantiles[:, 1]
        return out


def _weighted_quantiles(
    values: np.ndarray, counts: np.ndarray, quantiles: Sequence[float]
) -> np.ndarray:
    """``np.quantile(np.repeat(values, row), q)`` for each row of ``counts``, without repeating.

    ``values`` must be sorted. Interpolation is numpy's default (``linear``), which is also
    DuckDB's ``quantile_cont``, so the report's and the KPI view's P95 agree.
    """
    out = np.full((counts.shape[0], len(quantiles)), np.nan)
    if values.size == 0:
        return out
    cumulative = np.cumsum(counts, axis=1)
    n = cumulative[:, -1]
    last = values.size - 1
    for i, q in enumerate(quantiles):
        position = np.maximum(n - 1, 0) * q
        low = np.floor(position)
        high = np.minimum(low + 1, np.maximum(n - 1, 0))
        # the value at position k of the expanded array is values[#(cumulative <= k)]
        at_low = np.minimum((cumulative <= low[:, None]).sum(axis=1), last)
        at_high = np.minimum((cumulative <= high[:, None]).sum(axis=1), last)
        out[:, i] = values[at_low] + (position - low) * (values[at_high] - values[at_low])
    out[n == 0] = np.nan
    return out


@dataclass(frozen=True)
class _Side:
    runs_by_task: dict[str, list[RunResult]]

    @classmethod
    def of(cls, results: Sequence[RunResult]) -> _Side:
        by_task: dict[str, list[RunResult]] = defaultdict(list)
        for result in sorted(results, key=lambda r: (r.task_id, r.repetition)):
            by_task[result.task_id].append(result)
        return cls(dict(by_task))

    @property
    def tasks(self) -> list[str]:
        return list(self.runs_by_task)

    def arrays(self, order: Sequence[str]) -> _Arrays:
        sums = {
            name: np.array([sum(get(r) for r in self.runs_by_task[t]) for t in order], float)
            for name, get in _SUMMED.items()
        }
        # a run that could not be carried out has no wall time to speak of
        timed = sorted(
            (r.latency_ms, i)
            for i, t in enumerate(order)
            for r in self.runs_by_task[t]
            if r.status != "error"
        )
        return _Arrays(
            sums=sums,
            latency=np.array([v for v, _ in timed], float),
            latency_task=np.array([i for _, i in timed], int),
        )


# --- pass^k --------------------------------------------------------------------------------


def pass_hat_k(results: Sequence[RunResult], k: int) -> float | None:
    """pass^k: the chance all k runs of a task pass, averaged over tasks with >= k runs.

    None when no task has k runs.
    """
    per_task = pass_k_by_task(results, k)
    return float(np.mean([v[0] for v in per_task.values()])) if per_task else None


def pass_at_k(results: Sequence[RunResult], k: int) -> float | None:
    """pass@k: the chance at least one of k runs of a task passes, averaged over tasks."""
    per_task = pass_k_by_task(results, k)
    return float(np.mean([v[1] for v in per_task.values()])) if per_task else None


def pass_k_by_task(results: Sequence[RunResult], k: int) -> dict[str, tuple[float, float]]:
    """(pass^k, pass@k) of each task with at least k runs."""
    if k < 1:
        raise ValueError("k must be at least 1")
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for result in results:
        counts[result.task_id][0] += 1
        counts[result.task_id][1] += result.success
    out = {}
    for task_id, (n, c) in sorted(counts.items()):
        if n >= k:
            total = math.comb(n, k)
            out[task_id] = (math.comb(c, k) / total, 1 - math.comb(n - c, k) / total)
    return out


def _pass_k(baseline: Sequence[RunResult], candidate: Sequence[RunResult]) -> tuple[PassK, ...]:
    most = max(_most_runs(baseline), _most_runs(candidate))
    return tuple(
        PassK(
            k=k,
            baseline_pass_hat_k=pass_hat_k(baseline, k),
            candidate_pass_hat_k=pass_hat_k(candidate, k),
            baseline_pass_at_k=pass_at_k(baseline, k),
            candidate_pass_at_k=pass_at_k(candidate, k),
            tasks=len(pass_k_by_task(candidate, k)),
        )
        for k in range(1, most + 1)
    )


def _most_runs(results: Sequence[RunResult]) -> int:
    counts: dict[str, int] = defaultdict(int)
    for result in results:
        counts[result.task_id] += 1
    return max(counts.values(), default=0)


# --- side-effect diffs ---------------------------------------------------------------------


def diff_side_effects(
    baseline: Sequence[SideEffectRecord], candidate: Sequence[SideEffectRecord]
) -> tuple[list[SideEffectRecord], list[SideEffectRecord], list[ChangedCall]]:
    """(added, removed, changed) between two runs' committed writes.

    Identical calls pair off first, whatever their order; what is left of one tool on both
    sides pairs off in order as changed calls; the rest was added or removed.
    """
    left = list(baseline)
    unmatched: list[SideEffectRecord] = []
    for call in candidate:
        if call in left:
            left.remove(call)
        else:
            unmatched.append(call)
    added, changed = [], []
    for call in unmatched:
        same_tool = next((old for old in left if old.tool == call.tool), None)
        if same_tool is None:
            added.append(call)
            continue
        left.remove(same_tool)
        keys = sorted(set(same_tool.arguments) | set(call.arguments))
        changed.append(
            ChangedCall(
                tool=call.tool,
                before=same_tool.arguments,
                after=call.arguments,
                fields=tuple(
                    k
                    for k in keys
                    if same_tool.arguments.get(k, _ABSENT) != call.arguments.get(k, _ABSENT)
                ),
            )
        )
    return added, left, changed


_ABSENT = object()


def _task_diffs(base: _Side, cand: _Side) -> list[TaskDiff]:
    diffs = []
    for task_id in sorted(set(base.tasks) | set(cand.tasks)):
        b_runs = base.runs_by_task.get(task_id, [])
        c_runs = cand.runs_by_task.get(task_id, [])
        b_passed = sum(r.success for r in b_runs)
        c_passed = sum(r.success for r in c_runs)
        status: TaskStatus
        if not b_runs:
            status = "new"
        elif not c_runs:
            status = "missing"
        elif b_passed == len(b_runs) and c_passed < len(c_runs):
            status = "regressed"
        elif b_passed < len(b_runs) and c_passed == len(c_runs):
            status = "fixed"
        elif c_passed == len(c_runs):
            status = "passing"
        else:
            status = "failing"
        c_run = next((r for r in c_runs if not r.success), c_runs[0] if c_runs else None)
        b_run = None
        if b_runs:
            same = [r for r in b_runs if c_run is not None and r.repetition == c_run.repetition]
            b_run = same[0] if same else b_runs[0]
        some_run = c_run or b_run
        assert some_run is not None  # every task comes from one side or the other
        added, removed, changed = diff_side_effects(
            b_run.side_effects if b_run else (), c_run.side_effects if c_run else ()
        )
        diffs.append(
            TaskDiff(
                task_id=task_id,
                kind=some_run.kind,
                status=status,
                baseline_runs=len(b_runs),
                baseline_passed=b_passed,
                candidate_runs=len(c_runs),
                candidate_passed=c_passed,
                baseline_repetition=b_run.repetition if b_run else None,
                candidate_repetition=c_run.repetition if c_run else None,
                failing_checks=tuple(c_run.failed_checks) if c_run else (),
                added=tuple(added),
                removed=tuple(removed),
                changed=tuple(changed),
                divergences=c_run.divergences if c_run else (),
                error=c_run.error if c_run else None,
            )
        )
    return diffs


# --- regressions ---------------------------------------------------------------------------


def regressions(comparison: Comparison, thresholds: Thresholds) -> list[Regression]:
    """What ``nightly`` fails on: measures beyond the suite's thresholds, then broken tasks.

    Point estimates are compared (a replay is deterministic); each message also gives the
    95% interval. Broken tasks are reported, all of them, once there are more than
    ``thresholds.task_regressions``.
    """
    c = comparison
    found: list[Regression] = []

    def metric(name: str, *, limit: str, breached: bool) -> None:
        if not breached:
            return
        m = c.metric(name)

        def value(number: float, *, signed: bool = False) -> str:
            return format_value(m.unit, number, signed=signed)

        found.append(
            Regression(
                kind="metric",
                name=name,
                suite=c.suite,
                config=c.config,
                model=c.model,
                baseline=m.baseline,
                current=m.candidate,
                limit=limit,
                message=(
                    f"{c.suite}/{c.config}/{c.model}: {m.label} {value(m.baseline)} -> "
                    f"{value(m.candidate)} (95% CI of the change {value(m.ci_low, signed=True)}"
                    f" .. {value(m.ci_high, signed=True)}); allowed: {limit}"
                ),
            )
        )

    success = c.metric("success_rate")
    metric(
        "success_rate",
        limit=f"a drop of at most {100 * thresholds.success_rate_drop:g} points",
        breached=success.baseline - success.candidate > thresholds.success_rate_drop + 1e-12,
    )
    for name, allowed in (
        ("p95_latency_ms", thresholds.p95_latency_increase),
        ("cost_per_run", thresholds.cost_per_run_increase),
    ):
        m = c.metric(name)
        metric(
            name,
            limit=f"at most {100 * allowed:g}% above the baseline",
            breached=m.candidate > m.baseline * (1 + allowed) + 1e-12,
        )
    safety = c.metric("safety_violations")
    metric(
        "safety_violations",
        limit=f"at most {thresholds.safety_violations_increase} more than the baseline",
        breached=safety.delta > thresholds.safety_violations_increase,
    )
    failures = c.metric("tool_failure_rate")
    metric(
        "tool_failure_rate",
        limit=f"a rise of at most {100 * thresholds.tool_failure_rate_increase:g} points",
        breached=failures.delta > thresholds.tool_failure_rate_increase + 1e-12,
    )
    broken = c.regressed_tasks
    if len(broken) > thresholds.task_regressions:
        found.extend(_task_regression(c, task, thresholds) for task in broken)
    return found


def _task_regression(c: Comparison, task: TaskDiff, thresholds: Thresholds) -> Regression:
    why = "; ".join(
        f"{check.name}: {check.detail}" if check.detail else check.name
        for check in task.failing_checks
    ) or (task.error or "failed")
    diff = [
        *(f"+ {_call(call)}" for call in task.added),
        *(f"- {_call(call)}" for call in task.removed),
        *(f"~ {change.tool} ({', '.join(change.fields)})" for change in task.changed),
        *(f"! {d.kind} {d.summary}" for d in task.divergences),
    ]
    message = (
        f"{c.suite}/{c.config}/{c.model}: task {task.task_id} passed in the baseline and fails "
        f"now ({task.candidate_passed}/{task.candidate_runs} runs pass): {why}"
    )
    if diff:
        message += "; side effects: " + ", ".join(diff)
    return Regression(
        kind="task",
        name=task.task_id,
        suite=c.suite,
        config=c.config,
        model=c.model,
        baseline=task.baseline_pass_rate,
        current=task.candidate_pass_rate,
        limit=f"at most {thresholds.task_regressions} tasks that passed may fail",
        message=message,
        task=task,
    )


def _call(call: SideEffectRecord) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
    return f"{call.tool}({args})"


def format_value(unit: str, value: float | None, *, signed: bool = False) -> str:
    """A measure's value for people: ``71.0%``, ``4.90s``, ``$0.0060``; ``-`` when unknown.

    Args:
        unit: The measure's :attr:`MetricSpec.unit`.
        value: The value (latencies in ms, rates from 0 to 1).
        signed: Show ``+`` on positive values (for changes).
    """
    if value is None or math.isnan(value):
        return "-"
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    size = abs(value)
    if unit == "rate":
        return f"{sign}{100 * size:.1f}%"
    if unit == "ms":
        return f"{sign}{size / 1000:.2f}s"
    if unit == "usd":
        return f"{sign}${size:.4f}"
    return f"{sign}{size:.2f}" if unit == "calls" else f"{sign}{size:g}"
