"""Defences and DLP rules as policy: switches, specs, defaults, and counting what they did."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import get_args

import pytest

from agentlab.core.errors import ConfigError
from agentlab.core.events import DlpDetected, ExfiltrationBlocked, InjectionDetected, StepRejected
from agentlab.policy import (
    DEFAULT_DLP,
    DEFENCE_LAYERS,
    Defences,
    default_policy,
    parse_defences,
    parse_policy,
)
from agentlab.policy.model import DlpKind
from agentlab.security.dlp import KINDS
from agentlab.security.metrics import security_counts

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_dlp_kind_the_policy_names_has_a_detector() -> None:
    assert set(get_args(DlpKind)) == set(KINDS) == set(DEFAULT_DLP)


def test_the_embedded_policy_turns_every_layer_on_and_shows_the_default_rules() -> None:
    policy = default_policy()
    assert policy.defences.enabled == DEFENCE_LAYERS
    assert policy.dlp == DEFAULT_DLP


def test_a_policy_that_names_one_dlp_kind_keeps_the_defaults_for_the_rest() -> None:
    data = json.loads(default_policy().model_dump_json(by_alias=True))
    data["dlp"] = {"email_address": {"logs": "mask"}}
    del data["defences"]
    policy = parse_policy(json.dumps(data))
    assert policy.dlp["email_address"].logs == "mask"
    assert policy.dlp["card_number"] == DEFAULT_DLP["card_number"]
    assert policy.defences == Defences()


@pytest.mark.parametrize(
    ("spec", "on"),
    [
        ("all", DEFENCE_LAYERS),
        ("none", ()),
        ("spotlighting,injection_screen", ("spotlighting", "injection_screen")),
        ("all,-dlp", DEFENCE_LAYERS[:-1]),
        ("none,+dlp", ("dlp",)),
    ],
)
def test_defence_specs(spec: str, on: tuple[str, ...]) -> None:
    assert parse_defences(spec).enabled == on


def test_an_unknown_layer_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="the layers are: least_privilege, spotlighting"):
        parse_defences("all,-firewall")


def test_safety_counts_come_from_the_events() -> None:
    base = {"run_id": "run_1", "at": AT}
    events = [
        InjectionDetected(seq=1, source="tool:t", score=0.9, action="quarantined", **base),
        InjectionDetected(seq=2, source="tool:t", score=0.6, action="flagged", **base),
        DlpDetected(
            seq=3, place="tool_results", kinds=("api_key", "card_number"), count=3,
            action="masked", **base,
        ),
        DlpDetected(seq=4, place="answer", kinds=("api_key",), count=1, action="blocked", **base),
        ExfiltrationBlocked(seq=5, place="answer", targets=("http://e",), reason="r", **base),
        StepRejected(
            seq=6, step_id="s", approver="policy:dlp", rejected_by="policy", reason="r", **base
        ),
        StepRejected(seq=7, step_id="s", approver="rita", rejected_by="human", reason="r", **base),
    ]  # fmt: skip
    counts = security_counts(events)
    assert counts.injections_detected == 2
    assert counts.injections_quarantined == 1
    assert counts.dlp_detections == 4
    assert counts.dlp_blocked == 1
    assert counts.dlp_by_kind == {"api_key": 2, "card_number": 1}
    assert counts.exfiltrations_blocked == 1
    assert counts.policy_blocks == 1
    assert counts.total == 2 + 4 + 1 + 1
