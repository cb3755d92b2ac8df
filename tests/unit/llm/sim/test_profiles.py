"""Profiles are data: validated YAML, file:line errors, large clearly better than small."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError
from agentlab.llm.sim import DEFAULT_PROFILES_PATH, SimulatorPolicy, load_profiles


def test_the_built_in_profiles_are_simulators_and_large_is_better_in_every_rate() -> None:
    profiles = load_profiles()
    assert sorted(profiles) == ["sim-gullible", "sim-hasty", "sim-large", "sim-small"]
    large, small = profiles["sim-large"].errors, profiles["sim-small"].errors
    for rate in (
        "wrong_tool",
        "bad_arguments",
        "obey_injection",
        "claim_without_evidence",
        "verifier_miss",
    ):
        assert getattr(large, rate) < getattr(small, rate), rate
    assert large.refuse_harmful > small.refuse_harmful
    assert (
        large.act_on_assumption
        < small.act_on_assumption
        < profiles["sim-hasty"].errors.act_on_assumption
    )
    assert all("simulator" in p.description for p in profiles.values())


def test_a_wrong_field_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    text = DEFAULT_PROFILES_PATH.read_text(encoding="utf-8").replace(
        "wrong_tool: 0.12", "wrong_tool: 1.5"
    )
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "wrong_tool: 1.5" in row)
    with pytest.raises(ConfigError, match=rf"{path}:{line}: field 'profiles.sim-small.errors"):
        load_profiles(path)


def test_a_profile_must_be_named_and_described_as_a_simulator(tmp_path: Path) -> None:
    text = DEFAULT_PROFILES_PATH.read_text(encoding="utf-8").replace("sim-small:", "gpt-5:")
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="must start with 'sim-'"):
        load_profiles(path)


def test_a_new_profile_is_served_under_its_name(tmp_path: Path) -> None:
    text = DEFAULT_PROFILES_PATH.read_text(encoding="utf-8") + (
        "  sim-tiny:\n"
        "    description: agentlab simulator, tiny profile for tests.\n"
        "    errors: {wrong_tool: 0.5, bad_arguments: 0.5, obey_injection: 0.5,\n"
        "             claim_without_evidence: 0.5, verifier_miss: 0.5, refuse_harmful: 0.1}\n"
        "    latency: {base_ms: 10, per_prompt_token_ms: 0, per_completion_token_ms: 1}\n"
    )
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    policy = SimulatorPolicy(load_profiles(path))
    body = policy.respond({"model": "sim-tiny", "messages": [{"role": "user", "content": "hi"}]})
    assert body.body["model"] == "sim-tiny"
