"""Live suites: the model and the world live, nothing recorded, caps and budget shared.

The runs go against the simulator in-process and either an in-process world per run or a
tenants server on a real socket (a world per run, as a cluster's workers reach it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError
from agentlab.lab.runner import run_suite
from agentlab.lab.suite import load_suite
from agentlab.runtime import ToolCaps
from agentlab.world.tenants import WorldTenants
from tests.integration._serving import serving

MINI = Path(__file__).parents[1] / "fixtures" / "suites" / "mini" / "suite.yaml"
TASKS = ["po-toner", "stock-staples", "mail-buyer"]
FAST = 50
"""Time runs 50 times faster than real: the simulator's modelled latency is what it waits."""


@pytest.fixture
def tenants() -> Iterator[tuple[WorldTenants, str]]:
    suite = load_suite(MINI)
    app = WorldTenants(suite.world_fixture, fixture_path=suite.world_fixture_path)
    with serving(app, name="world tenants") as url:
        yield app, url


def test_a_live_suite_runs_and_grades_without_writing_a_cassette(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    run = run_suite(
        MINI,
        config="single",
        model="sim-large",
        mode="live",
        tasks=TASKS,
        cassettes=cassettes,
        time_scale=FAST,
    )

    assert [r.task_id for r in run.results] == TASKS
    assert all(r.mode == "live" for r in run.results)
    assert all(r.success for r in run.results), [r.failed_checks for r in run.results]
    assert not cassettes.exists()
    po = next(r for r in run.results if r.task_id == "po-toner")
    assert [e.tool for e in po.side_effects] == ["create_purchase_order"]


def test_live_runs_on_a_tenants_server_each_leave_their_writes_in_their_own_world(
    tenants: tuple[WorldTenants, str],
) -> None:
    app, url = tenants
    caps = ToolCaps(load_suite(MINI).loaded_policy.rate_limits)
    run = run_suite(
        MINI, config="single", model="sim-large", mode="live", tasks=TASKS, world_url=url,
        time_scale=FAST, caps=caps, concurrency=3,
    )  # fmt: skip

    experiment = run.experiment.experiment_id
    assert sorted(app.tenants()) == sorted(f"{experiment}.{t}.r0" for t in TASKS)
    for result in run.results:
        world = app.world(f"{experiment}.{result.task_id}.r0")
        assert world.side_effects == len(result.side_effects), result.task_id
        assert result.success, result.failed_checks
    assert caps.peak_in_flight("erp_api") >= 1  # the suite's runs took the shared caps


def test_two_live_experiments_never_share_a_run_id(tenants: tuple[WorldTenants, str]) -> None:
    _, url = tenants
    first, second = (
        run_suite(
            MINI,
            config="single",
            model="sim-large",
            mode="live",
            tasks=TASKS[:1],
            world_url=url,
            time_scale=FAST,
        )
        for _ in range(2)
    )
    assert first.experiment.experiment_id != second.experiment.experiment_id
    assert first.results[0].run_id != second.results[0].run_id


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "replay", "world_url": "http://127.0.0.1:1"}, "for live runs"),
        ({"mode": "live", "time_scale": 0}, "time_scale must be above 0"),
        (
            {"mode": "live", "time_scale": 4, "model_base_url": "http://127.0.0.1:1/v1"},
            "real endpoint runs in real time",
        ),
    ],
)
def test_live_options_that_cannot_work_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_suite(MINI, config="single", model="sim-large", tasks=TASKS[:1], **options)
