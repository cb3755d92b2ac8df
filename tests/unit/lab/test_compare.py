"""compare: deltas with bootstrap intervals, pass^k, side-effect diffs, regressions."""

from __future__ import annotations

import numpy as np
import pytest

from agentlab.lab.compare import (
    Comparison,
    _weighted_quantiles,
    compare,
    diff_side_effects,
    pass_at_k,
    pass_hat_k,
    pass_k_by_task,
    regressions,
)
from agentlab.lab.results import CheckResult, Divergence, RunResult
from agentlab.lab.suite import Thresholds
from tests.unit.report._runs import mail, result


def bernoulli_side(p: float, n: int, seed: int, **more: object) -> list[RunResult]:
    outcomes = np.random.default_rng(seed).random(n) < p
    return [result(f"t{i:03}", success=bool(ok), **more) for i, ok in enumerate(outcomes)]


def test_point_deltas_are_the_measures_difference() -> None:
    baseline = [
        result("a", latency_ms=1000, cost_usd=0.01, tool_calls=2, tool_failures=0),
        result("b", latency_ms=3000, cost_usd=0.03, tool_calls=2, tool_failures=1, success=False),
    ]
    candidate = [
        result("a", latency_ms=2000, cost_usd=0.02, tool_calls=4, tool_failures=1,
               blocked_calls=1, rework=True),
        result("b", latency_ms=5000, cost_usd=0.02, tool_calls=4, tool_failures=1,
               forbidden_effects=2),
    ]  # fmt: skip

    c = compare(baseline, candidate, n_boot=50)

    assert c.metric("success_rate").delta == pytest.approx(0.5)
    assert c.metric("rework_rate").candidate == pytest.approx(0.5)
    assert c.metric("cost_per_run").delta == pytest.approx(0.0)
    assert c.metric("tool_failure_rate").baseline == pytest.approx(1 / 4)
    assert c.metric("tool_failure_rate").candidate == pytest.approx(2 / 8)
    assert c.metric("safety_violations").candidate == 3
    assert (c.metric("policy_blocks").candidate, c.metric("forbidden_effects").candidate) == (1, 2)
    assert c.metric("avg_tool_calls").delta == pytest.approx(2.0)
    assert c.metric("p50_latency_ms").delta == pytest.approx(
        np.quantile([2000, 5000], 0.5) - np.quantile([1000, 3000], 0.5)
    )
    assert c.metric("p95_latency_ms").candidate == pytest.approx(np.quantile([2000, 5000], 0.95))
    assert c.metric("success_rate").is_worse is False
    assert c.metric("avg_tool_calls").is_worse is True


def test_the_interval_contains_the_true_difference() -> None:
    baseline = bernoulli_side(0.6, 400, seed=1)
    candidate = bernoulli_side(0.8, 400, seed=2)

    delta = compare(baseline, candidate, seed=3).metric("success_rate")

    assert delta.ci_low < 0.2 < delta.ci_high
    assert delta.ci_low > 0  # and 400 tasks are enough to tell
    assert delta.is_significant


def test_latency_intervals_contain_the_true_p95_difference() -> None:
    rng = np.random.default_rng(5)
    base_ms = rng.lognormal(8, 0.5, size=500)
    baseline = [result(f"t{i}", latency_ms=float(v)) for i, v in enumerate(base_ms)]
    candidate = [result(f"t{i}", latency_ms=float(v) * 1.5) for i, v in enumerate(base_ms)]
    true_p95 = float(np.exp(8 + 0.5 * 1.6448536269514722))  # the log-normal's own P95

    delta = compare(baseline, candidate).metric("p95_latency_ms")

    assert delta.ci_low < 0.5 * true_p95 < delta.ci_high


def test_resampled_quantiles_are_numpys_over_the_repeated_runs() -> None:
    rng = np.random.default_rng(4)
    values = np.sort(rng.lognormal(7, 1, size=30))
    counts = rng.integers(0, 4, size=(50, 30)).astype(float)
    counts[0] = 0  # a resample that drew no timed run
    counts[1] = np.eye(30)[7]  # one that drew a single run

    got = _weighted_quantiles(values, counts, (0.5, 0.95))

    assert np.isnan(got[0]).all()
    assert got[1] == pytest.approx([values[7], values[7]])
    for row in range(2, 50):
        expected = np.quantile(np.repeat(values, counts[row].astype(int)), [0.5, 0.95])
        assert got[row] == pytest.approx(expected)


def test_pairing_by_task_cancels_task_difficulty() -> None:
    baseline = bernoulli_side(0.5, 100, seed=9)

    same = compare(baseline, list(baseline), n_boot=500).metric("success_rate")
    unpaired = compare(
        baseline, [r.model_copy(update={"task_id": "x" + r.task_id}) for r in baseline]
    ).metric("success_rate")

    assert (same.delta, same.ci_low, same.ci_high) == (0, 0, 0)
    assert unpaired.delta == 0
    assert unpaired.ci_high - unpaired.ci_low > 0.1


def test_the_same_seed_gives_the_same_comparison() -> None:
    baseline = bernoulli_side(0.6, 50, seed=1, latency_ms=1500)
    candidate = bernoulli_side(0.7, 50, seed=2, latency_ms=1800)

    first = compare(baseline, candidate, seed=11, n_boot=300)
    again = compare(baseline, candidate, seed=11, n_boot=300)
    other = compare(baseline, candidate, seed=12, n_boot=300)

    assert first == again
    assert first.metric("success_rate").ci_low != other.metric("success_rate").ci_low


def test_pass_hat_k_and_pass_at_k_on_a_hand_example() -> None:
    runs = [
        *(result("a", repetition=i, success=i != 0) for i in range(4)),  # 3 of 4 pass
        *(result("b", repetition=i) for i in range(4)),  # 4 of 4
        *(result("c", repetition=i, success=False) for i in range(4)),  # 0 of 4
        result("d"),  # one run only: left out for k >= 2
    ]

    # per task C(c,k)/C(n,k): a = C(3,2)/C(4,2) = 3/6, b = 1, c = 0
    assert pass_hat_k(runs, 2) == pytest.approx((0.5 + 1 + 0) / 3)
    # 1 - C(n-c,k)/C(n,k): a = 1 - 0/6, b = 1, c = 1 - 6/6
    assert pass_at_k(runs, 2) == pytest.approx(2 / 3)
    assert pass_hat_k(runs, 1) == pytest.approx((0.75 + 1 + 0 + 1) / 4)
    assert pass_hat_k(runs, 4) == pytest.approx(1 / 3)
    assert pass_k_by_task(runs, 3)["a"] == pytest.approx((1 / 4, 1.0))
    assert pass_hat_k(runs, 5) is None

    c = compare(runs, runs, n_boot=10)
    assert [p.k for p in c.pass_k] == [1, 2, 3, 4]
    assert c.pass_k[1].candidate_pass_hat_k == pytest.approx(0.5)
    assert c.pass_k[1].tasks == 3


def test_side_effect_diff_pairs_same_calls_then_same_tools() -> None:
    base = [mail("bob@x"), mail("carol@x"), mail("dave@x", "Hi")]
    cand = [mail("carol@x"), mail("bob@x"), mail("dave@x", "Hello"), mail("eve@x")]

    added, removed, changed = diff_side_effects(base, cand)

    assert added == [mail("eve@x")]
    assert removed == []
    assert [(c.tool, c.fields) for c in changed] == [("send_mail", ("subject",))]
    assert changed[0].before["subject"] == "Hi"
    assert diff_side_effects(cand, base)[1] == [mail("eve@x")]
    assert diff_side_effects(base, list(reversed(base))) == ([], [], [])


def test_tasks_are_diffed_one_by_one() -> None:
    unrecorded = Divergence(
        kind="unrecorded",
        target="tool",
        method="POST",
        path="/mail/send",
        is_write=True,
        summary="send_mail(to='all@x')",
    )
    baseline = [
        result("broke", side_effects=[mail("bob@x")]),
        result("fixed", success=False),
        result("gone"),
        *(result("flaky", repetition=i, side_effects=[mail("bob@x")]) for i in range(3)),
    ]
    candidate = [
        result("broke", success=False, side_effects=[mail("bob@x"), mail("all@x")],
               divergences=[unrecorded]),
        result("fixed"),
        result("new"),
        result("flaky", repetition=0, side_effects=[mail("bob@x")]),
        result("flaky", repetition=1, success=False, side_effects=[],
               checks=[CheckResult(name="answer", passed=False, detail="no ticket number")]),
        result("flaky", repetition=2, side_effects=[mail("bob@x")]),
    ]  # fmt: skip

    c = compare(baseline, candidate, n_boot=20)

    assert {t.task_id: t.status for t in c.tasks} == {
        "broke": "regressed",
        "fixed": "fixed",
        "gone": "missing",
        "new": "new",
        "flaky": "regressed",
    }
    broke = c.task("broke")
    assert broke.added == (mail("all@x"),)
    assert broke.divergences == (unrecorded,)
    assert [ch.name for ch in broke.failing_checks] == ["side_effects"]
    flaky = c.task("flaky")  # the diff is about the failing repetition, against the same one
    assert (flaky.candidate_repetition, flaky.baseline_repetition) == (1, 1)
    assert flaky.removed == (mail("bob@x"),)
    assert flaky.failing_checks[0].detail == "no ticket number"
    assert (flaky.candidate_passed, flaky.candidate_runs) == (2, 3)

    frame = c.tasks_frame().set_index("task_id")
    assert frame.loc["broke", "added"] == 1
    assert frame.loc["flaky", "failing_checks"] == "answer"
    metrics = c.metrics_frame().set_index("metric")
    assert metrics.loc["success_rate", "delta"] == pytest.approx(c.metric("success_rate").delta)
    assert list(c.pass_k_frame()["k"]) == [1, 2, 3]


def comparison(baseline: list[RunResult], candidate: list[RunResult]) -> Comparison:
    return compare(baseline, candidate, n_boot=50)


def test_each_threshold_is_checked_and_named() -> None:
    base = [result(f"t{i}", latency_ms=1000, cost_usd=0.010, tool_calls=10) for i in range(10)]
    worse = [
        result(f"t{i}", latency_ms=1300, cost_usd=0.012, tool_calls=10, tool_failures=1,
               blocked_calls=1 if i < 2 else 0)
        for i in range(10)
    ]  # fmt: skip

    found = regressions(comparison(base, worse), Thresholds())

    assert [r.name for r in found] == [
        "p95_latency_ms",
        "cost_per_run",
        "safety_violations",
        "tool_failure_rate",
    ]
    p95 = found[0]
    assert (p95.kind, p95.baseline, p95.current) == ("metric", 1000, 1300)
    assert "P95 latency 1.00s -> 1.30s" in p95.message
    assert "at most 20% above the baseline" in p95.message
    assert p95.anchor == "compare-single--sim-large"
    loose = Thresholds(
        p95_latency_increase=0.3,
        cost_per_run_increase=0.2,
        safety_violations_increase=2,
        tool_failure_rate_increase=0.1,
    )
    assert regressions(comparison(base, worse), loose) == []


def test_a_success_rate_drop_beyond_the_threshold_is_a_regression() -> None:
    base = [result(f"t{i}") for i in range(50)]
    one_down = [result(f"t{i}", success=i != 0) for i in range(50)]  # -2 points: allowed

    allowed = Thresholds(task_regressions=2)
    assert [r.name for r in regressions(comparison(base, one_down), allowed)] == []
    two_down = [result(f"t{i}", success=i > 1) for i in range(50)]
    found = regressions(comparison(base, two_down), allowed)
    assert [(r.name, r.baseline, r.current) for r in found] == [("success_rate", 1.0, 0.96)]


def test_a_broken_task_names_its_failing_check_and_its_side_effect_diff() -> None:
    base = [result("mail-status", side_effects=[mail("bob@x")]), result("other")]
    cand = [
        result(
            "mail-status",
            success=False,
            side_effects=[mail("bob@x"), mail("all@x")],
            checks=[CheckResult(name="side_effects", passed=False, detail="2 send_mail, not 1")],
        ),
        result("other"),
    ]

    found = regressions(comparison(base, cand), Thresholds(success_rate_drop=1))

    (task,) = found
    assert (task.kind, task.name, task.baseline, task.current) == ("task", "mail-status", 1, 0)
    assert "task mail-status passed in the baseline and fails now" in task.message
    assert "side_effects: 2 send_mail, not 1" in task.message
    assert "+ send_mail(to='all@x'" in task.message
    assert task.task is not None
    assert task.task.added == (mail("all@x"),)
    assert task.anchor == "task-single--sim-large--mail-status"
    tolerant = Thresholds(success_rate_drop=1, task_regressions=1)
    assert regressions(comparison(base, cand), tolerant) == []


def test_comparing_with_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one run on each side"):
        compare([], [result("a")])
