"""Arguments as a model writes them: JSON text that may not be an object, and a call id."""

from __future__ import annotations

from agentlab.runtime import UNPARSED_ARGUMENTS
from agentlab.store import project_run
from tests.unit.runtime._bench import PROCUREMENT, bench, run


def test_text_that_is_not_a_json_object_is_recorded_and_answered_as_invalid() -> None:
    async def scenario() -> None:
        async with bench() as b:
            recorder = b.start()
            outcome = await b.executor.call(
                recorder, PROCUREMENT, "find_supplier", '{"query": "Nagoya"', call_id="call_1"
            )
            assert outcome.status == "invalid"
            assert "not a JSON object" in outcome.message
            assert b.sent == []  # nothing reached the world
            step = project_run(b.store.read(recorder.run_id)).steps[outcome.step_id]
            assert step.step.arguments == {UNPARSED_ARGUMENTS: '{"query": "Nagoya"'}
            assert step.step.call_id == "call_1"
            assert step.status == "failed"
            assert step.last_error is not None
            assert [r.decision for r in b.audit.read()] == ["invalid"]

    run(scenario())


def test_json_text_of_an_object_is_parsed_and_runs_like_a_mapping() -> None:
    async def scenario() -> None:
        async with bench() as b:
            recorder = b.start()
            outcome = await b.executor.call(
                recorder, PROCUREMENT, "find_supplier", '{"query": "Nagoya"}', call_id="c2"
            )
            assert outcome.status == "ok", outcome.message
            step = project_run(b.store.read(recorder.run_id)).steps[outcome.step_id]
            assert step.step.arguments == {"query": "Nagoya"}
            assert step.step.call_id == "c2"
            assert len(b.sent_to("/erp/suppliers", "GET")) == 1

    run(scenario())
