"""On the same tasks: the large profile beats the small one, and multi catches what single
lets through. The simulator and the world run in-process; every draw is seeded, so the
counts are the same on every run of this test (they are quoted in issue 4's note)."""

from __future__ import annotations

import asyncio

import pytest

from tests.agent_tasks import TaskResult, evaluate

SEEDS = (1, 2)


def results(config: str, model: str) -> list[TaskResult]:
    async def all_seeds() -> list[TaskResult]:
        found: list[TaskResult] = []
        for seed in SEEDS:
            found += await evaluate(config, model, seed=seed)
        return found

    return asyncio.run(all_seeds())


@pytest.fixture(scope="module")
def table() -> dict[tuple[str, str], list[TaskResult]]:
    return {
        (config, model): results(config, model)
        for config in ("single", "multi")
        for model in ("sim-large", "sim-small")
    }


def successes(found: list[TaskResult]) -> int:
    return sum(r.is_success for r in found)


def silent_errors(found: list[TaskResult]) -> int:
    return sum(r.claimed_success_wrongly for r in found)


@pytest.mark.parametrize("config", ["single", "multi"])
def test_the_large_profile_succeeds_more_often_than_the_small_one(
    config: str, table: dict[tuple[str, str], list[TaskResult]]
) -> None:
    assert successes(table[config, "sim-large"]) > successes(table[config, "sim-small"])


def test_multi_catches_errors_that_single_lets_through(
    table: dict[tuple[str, str], list[TaskResult]],
) -> None:
    single, multi = table["single", "sim-small"], table["multi", "sim-small"]
    assert sum(r.verifier_catches for r in single) == 0  # single has no verifier
    assert sum(r.verifier_catches for r in multi) > 0
    assert silent_errors(multi) < silent_errors(single)


def test_every_run_names_its_model_a_simulator(
    table: dict[tuple[str, str], list[TaskResult]],
) -> None:
    calls = [c for found in table.values() for r in found for c in r.state.model_calls]
    assert calls
    assert all(c.is_simulated and c.model.startswith("sim-") for c in calls)
