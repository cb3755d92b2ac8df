from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from agentlab.core.ids import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    IDEMPOTENCY_KEY_MIN_LENGTH,
    IdempotencyKey,
    IdFactory,
    derive_idempotency_key,
)

KEY = TypeAdapter(IdempotencyKey)
ARGS = {"supplier_id": "SUP-1", "items": [{"sku": "TONER-5", "qty": 5}], "note": None}


def test_the_key_does_not_depend_on_the_order_of_argument_keys() -> None:
    reordered = {"note": None, "items": [{"qty": 5, "sku": "TONER-5"}], "supplier_id": "SUP-1"}
    assert list(reordered) != list(ARGS)
    assert derive_idempotency_key("run_1", 3, "order", ARGS) == derive_idempotency_key(
        "run_1", 3, "order", reordered
    )


@pytest.mark.parametrize(
    ("run_id", "position", "tool", "arguments"),
    [
        ("run_2", 3, "order", ARGS),
        ("run_1", 4, "order", ARGS),
        ("run_1", 3, "cancel", ARGS),
        ("run_1", 3, "order", ARGS | {"note": "urgent"}),
        ("run_1", 3, "order", {**ARGS, "items": [{"sku": "TONER-5", "qty": 6}]}),
    ],
    ids=["run", "position", "tool", "arguments", "nested-argument"],
)
def test_a_different_side_effect_gets_a_different_key(
    run_id: str, position: int, tool: str, arguments: dict[str, object]
) -> None:
    base = derive_idempotency_key("run_1", 3, "order", ARGS)
    assert derive_idempotency_key(run_id, position, tool, arguments) != base  # type: ignore[arg-type]


def test_a_derived_key_is_a_valid_idempotency_key() -> None:
    for position in range(20):
        key = derive_idempotency_key("run_1", position, "send mail", {"to": "a b"})
        assert IDEMPOTENCY_KEY_MIN_LENGTH <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH
        assert KEY.validate_python(key) == key


def test_a_seeded_factory_repeats_its_ids() -> None:
    def draw(factory: IdFactory) -> list[str]:
        return [factory.run_id(), factory.step_id(), factory.step_id(), factory.artifact_id()]

    first = draw(IdFactory.seeded(42))
    assert first == draw(IdFactory.seeded(42))
    assert len(set(first)) == len(first)
    assert set(first).isdisjoint(draw(IdFactory.seeded(43)))


def test_ids_say_what_they_name(ids: IdFactory) -> None:
    assert ids.run_id().startswith("run_")
    assert ids.step_id().startswith("step_")
    assert ids.artifact_id().startswith("art_")
