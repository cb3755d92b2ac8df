"""A requester played by a model (``driver: model``): recorded in the cassette, replayed exactly.

The helpdesk task ``mt-asset-tag-dock-model`` is recorded with the in-process simulator
playing both the agent and the person, then replayed from that recording.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlab.lab import load_suite, run_suite
from agentlab.lab.cassettes import load_cassette
from agentlab.lab.metrics import open_metrics
from agentlab.lab.runner import cassette_path
from agentlab.llm.sim.requesting import REQUESTER_MARKER

pytestmark = pytest.mark.integration

TASK = "mt-asset-tag-dock-model"


def test_a_model_played_requester_is_recorded_and_replayed_event_for_event(
    tmp_path: Path,
) -> None:
    suite = load_suite("helpdesk")
    options = {"config": "single", "model": "sim-large", "cassettes": tmp_path, "tasks": [TASK]}
    with open_metrics(tmp_path / "lab.duckdb") as metrics:
        recorded = run_suite(suite, mode="record", metrics=metrics, **options)
        replayed = run_suite(suite, mode="replay", metrics=metrics, **options)
        events = {
            run.experiment.experiment_id: [
                metrics.events(r.run_id, r.experiment_id)[["seq", "kind", "payload"]].to_dict(
                    "records"
                )
                for r in run.results
            ]
            for run in (recorded, replayed)
        }
    first = recorded.results[0]
    assert first.success, [c.detail for c in first.failed_checks]
    assert first.questions_needed >= 1
    [(_, recorded_events), (_, replayed_events)] = events.items()
    assert replayed_events == recorded_events
    assert all(r.divergences == () for r in replayed.results)
    assert [r.success for r in replayed.results] == [r.success for r in recorded.results]
    # the person's turns are model calls in the cassette, and the events say a model wrote them
    cassette = load_cassette(cassette_path(tmp_path, "helpdesk", "single", "sim-large", TASK))
    persona_calls = [
        i for i in cassette.interactions if i.target == "model" and REQUESTER_MARKER.encode() in (
            i.request.body if isinstance(i.request.body, bytes) else i.request.body.encode()
        )
    ]  # fmt: skip
    replies = [e for e in recorded_events[0] if e["kind"] == "user_replied"]
    assert len(persona_calls) >= len(replies) >= 1
    assert all('"by":"model"' in e["payload"] for e in replies)


def test_an_agent_that_never_asks_the_model_played_requester_fails_the_task(
    tmp_path: Path,
) -> None:
    run = run_suite(
        "helpdesk", config="single", model="sim-hasty", mode="record", cassettes=tmp_path,
        tasks=[TASK], repeats=1,
    )  # fmt: skip
    failed = {c.name: c.detail for r in run.results for c in r.failed_checks}
    assert not any(r.success for r in run.results)
    assert "never asked for asset_tag" in failed.get("conversation", "")
