from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from agentlab.core.records import Artifact, Run, SideEffect, Step

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def step(side_effect: str, key: str | None = None) -> Step:
    return Step(
        step_id="step_7",
        run_id="run_1",
        position=0,
        tool="send_mail",
        arguments={"to": "bob@example.co.jp"},
        side_effect=side_effect,
        idempotency_key=key,
    )


def test_a_write_without_idempotency_key_is_refused_naming_the_step() -> None:
    with pytest.raises(ValidationError, match=r"step step_7 .*no idempotency_key"):
        step("write")


@pytest.mark.parametrize(
    "key",
    ["k" * 15, "k" * 65, "idk_0123 456789abcdef", ""],
    ids=["15-chars", "65-chars", "space", "empty"],
)
def test_malformed_idempotency_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="idempotency_key"):
        step("write", key)


@pytest.mark.parametrize("key", ["k" * 16, "k" * 64, "idk_A-z.0:9_abcdefgh"])
def test_keys_of_16_to_64_allowed_characters_are_accepted(key: str) -> None:
    assert step("write", key).idempotency_key == key


def test_a_read_needs_no_key() -> None:
    read = step("read")
    assert read.idempotency_key is None
    assert read.side_effect is SideEffect.READ
    assert not read.has_side_effect
    assert step("write", "k" * 16).has_side_effect


def test_records_are_frozen() -> None:
    run = Run(run_id="run_1", task="t", actor="alice", started_at=T0)
    with pytest.raises(ValidationError, match="frozen"):
        run.task = "something else"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        step("read").position = 3  # type: ignore[misc]
    assert run.task == "t"


def test_records_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Run(run_id="run_1", task="t", actor="a", started_at=T0, colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Artifact(artifact_id="art_1", run_id="run_1", kind="answer", size=3)  # type: ignore[call-arg]
