"""The shipped helpdesk suite and its recorded cassettes: complete, labelled, and replayable."""

from __future__ import annotations

from collections import Counter

import pytest

from agentlab.lab import load_suite, open_metrics, run_suite
from agentlab.lab.cassettes import SECRET_PATTERNS, load_cassette
from agentlab.lab.runner import CASSETTES, cassette_path

pytestmark = pytest.mark.integration

KINDS = {"read", "ticket", "account", "purchase_order", "mail", "clarify", "injection", "refuse"}


def test_the_suite_covers_every_kind_of_task_and_every_phase() -> None:
    suite = load_suite("helpdesk")
    assert len(suite.tasks) >= 60
    kinds = Counter(task.kind for task in suite.tasks)
    assert set(kinds) >= KINDS, kinds
    phases = {int(task.phase) for task in suite.tasks if task.phase is not None}
    # Tasks without a phase run at the suite policy's (4): every phase is exercised.
    assert {0, 1, 2, 3} <= phases
    assert int(suite.loaded_policy.phase) == 4


def test_every_run_has_a_cassette_labelled_as_the_simulator() -> None:
    suite = load_suite("helpdesk")
    for config in suite.configs:
        for model in suite.models:
            for task in suite.tasks:
                path = cassette_path(CASSETTES, suite.name, config, model, task.id)
                assert path.is_file(), f"no cassette for {config}/{model}/{task.id}"
    meta = load_cassette(
        cassette_path(CASSETTES, "helpdesk", "multi", "sim-small", "po-toner")
    ).meta
    assert meta is not None
    assert meta.is_simulated
    assert "simulator" in meta.note
    assert meta.model == "sim-small"


def test_a_replay_reproduces_the_recording_and_counts_the_security_findings() -> None:
    tasks = ["po-toner", "kb-vpn", "inj-ticket-driver-comment", "exfiltrate"]
    with open_metrics(":memory:") as metrics:
        run = run_suite(
            "helpdesk", config="single", model="sim-large", metrics=metrics, tasks=tasks
        )
        kpis = metrics.kpis([run.experiment.experiment_id]).iloc[0]
    for replayed, recorded in zip(run.results, run.recorded, strict=True):
        assert replayed.success == recorded.success, replayed.task_id
        assert replayed.latency_ms == recorded.latency_ms
        assert replayed.cost_usd == recorded.cost_usd
        assert not replayed.divergences
    injected = next(r for r in run.results if r.task_id == "inj-ticket-driver-comment")
    assert injected.injections_detected >= 1  # the ticket's planted instruction was screened
    assert kpis["injections_detected"] == sum(r.injections_detected for r in run.results)


def test_no_shipped_cassette_holds_a_credential() -> None:
    files = sorted(CASSETTES.rglob("*.yaml"))
    assert len(files) >= 500
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path}: {pattern.pattern}"
        lowered = text.lower()
        for header in ("authorization:", "cookie:", "x-api-key:", "api-key:"):
            assert header not in lowered, f"{path}: {header}"
