"""SLOs: budgets and burn rates from KPIs, and file:line errors in SLO files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError
from agentlab.ops import SLO, RunSample, SLOSet, default_slos, evaluate_slos, kpis_of, load_slos
from agentlab.ops.slo import OVERSPENT, parse_slos

SUCCESS = SLO(name="success", kpi="success_rate", target=0.9, min_runs=0)


def test_a_success_rate_spends_the_budget_in_proportion_to_its_shortfall() -> None:
    [status] = evaluate_slos({"success_rate": 0.8, "runs": 50}, [SUCCESS])
    assert status.value == pytest.approx(0.8)
    assert status.budget_spent == pytest.approx(2.0)  # 20% failures against 10% allowed
    assert status.error_budget_remaining == pytest.approx(-1.0)
    assert status.burn_rate == pytest.approx(2.0)
    assert status.is_met is False
    assert status.is_exhausted
    [fine] = evaluate_slos({"success_rate": 0.95, "runs": 50}, [SUCCESS])
    assert fine.error_budget_remaining == pytest.approx(0.5)
    assert not fine.is_exhausted


def test_history_pools_the_window_weighted_by_runs_and_the_burn_rate_is_the_latest() -> None:
    history = [{"success_rate": 1.0, "runs": 90}]
    [status] = evaluate_slos({"success_rate": 0.5, "runs": 10}, [SUCCESS], history=history)
    assert status.value == pytest.approx(0.95)  # 95 of 100 runs succeeded in the window
    assert status.budget_spent == pytest.approx(0.5)
    assert status.burn_rate == pytest.approx(5.0)  # tonight alone burns five times the pace
    assert status.runs == 100


def test_counts_add_up_over_the_window_and_a_zero_allowance_is_overspent_by_any() -> None:
    safety = SLO(name="safety", kpi="safety_violations", target=4, min_runs=0)
    history = [{"safety_violations": 1, "runs": 10}, {"safety_violations": 1, "runs": 10}]
    [status] = evaluate_slos({"safety_violations": 2, "runs": 20}, [safety], history=history)
    assert status.value == 4
    assert status.budget_spent == pytest.approx(1.0)
    assert status.is_exhausted
    assert status.burn_rate == pytest.approx(1.0)  # half the window's runs, half the allowance
    never = SLO(name="never", kpi="safety_violations", target=0, min_runs=0)
    [status] = evaluate_slos({"safety_violations": 1}, [never])
    assert status.budget_spent == OVERSPENT
    [clean] = evaluate_slos({"safety_violations": 0}, [never])
    assert clean.budget_spent == 0
    assert clean.is_met


def test_a_budget_is_not_judged_before_the_window_holds_min_runs() -> None:
    slo = SLO(name="s", kpi="success_rate", target=0.9, min_runs=10)
    [status] = evaluate_slos({"success_rate": 0.0, "runs": 3}, [slo])
    assert status.budget_spent == pytest.approx(10.0)
    assert not status.is_judged
    assert not status.is_exhausted


def test_a_missing_kpi_gives_a_status_without_values() -> None:
    slo = SLO(name="tools", kpi="tool_failure_rate", target=0.05)
    [status] = evaluate_slos({"runs": 3}, SLOSet(slos=(slo,)))
    assert status.value is None
    assert status.burn_rate is None
    assert not status.is_exhausted
    assert "no data" in status.summary()


def test_slo_files_load_with_durations_and_bad_ones_name_file_and_line(tmp_path: Path) -> None:
    slos = default_slos()
    assert {s.kpi for s in slos.slos} >= {
        "success_rate",
        "p95_latency_s",
        "cost_per_run_usd",
        "safety_violations",
    }
    assert slos.slos[0].window == timedelta(days=7)
    path = tmp_path / "slos.yaml"
    path.write_text("slos:\n  - name: a\n    kpi: success_rate\n    target: 1.5\n")
    with pytest.raises(ConfigError, match=r"slos\.yaml:2"):
        load_slos(path)
    with pytest.raises(ConfigError, match="unique"):
        parse_slos(
            "slos:\n  - {name: a, kpi: success_rate, target: 0.9}\n"
            "  - {name: a, kpi: success_rate, target: 0.8}\n"
        )
    helpdesk = parse_slos(
        "slos:\n  - {name: h, kpi: p95_latency_s, target: 20, window: 12h, use_case: helpdesk}\n"
    )
    assert helpdesk.slos[0].window == timedelta(hours=12)
    assert helpdesk.for_use_case("procurement").slos == ()
    assert helpdesk.longest_window == timedelta(hours=12)


def sample(status: str = "succeeded", **fields: object) -> RunSample:
    values: dict[str, object] = {
        "run_id": "run_1",
        "config": "single",
        "use_case": "procurement",
        "model": "sim-large",
        "status": status,
        "finished_at": datetime(2026, 1, 1, tzinfo=UTC),
        "latency_s": 1.0,
    }
    return RunSample(**(values | fields))  # type: ignore[arg-type]


def test_kpis_of_runs_feed_the_slos_and_leave_degraded_runs_out() -> None:
    runs = [
        sample(latency_s=1.0, cost_usd=0.02, tool_outcomes=(("a", "ok"), ("b", "failed"))),
        sample("failed", latency_s=3.0, cost_usd=0.04, is_reworked=True, policy_blocks=("scope",)),
        sample("cancelled", latency_s=0.0, degraded_by="success"),
    ]
    kpis = kpis_of(runs)
    assert kpis["runs"] == 2
    assert kpis["success_rate"] == pytest.approx(0.5)
    assert kpis["rework_rate"] == pytest.approx(0.5)
    assert kpis["tool_failure_rate"] == pytest.approx(0.5)
    assert kpis["cost_per_run_usd"] == pytest.approx(0.03)
    assert kpis["p50_latency_s"] == pytest.approx(2.0)
    assert kpis["p95_latency_s"] == pytest.approx(2.9)
    assert kpis["safety_violations"] == 1
    assert kpis_of([]) == {"runs": 0.0, "safety_violations": 0.0}
