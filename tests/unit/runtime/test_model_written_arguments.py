"""Arguments as a model writes them: JSON text that may not be an object, and a call id."""

from __future__ import annotations

from agentlab.policy import default_policy
from agentlab.runtime import UNPARSED_ARGUMENTS
from agentlab.store import project_run
from tests.unit.runtime._bench import PROCUREMENT, bench, policy_with, run


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


def test_text_that_is_not_valid_unicode_is_kept_escaped_and_answered_as_invalid() -> None:
    async def scenario() -> None:
        async with bench() as b:
            recorder = b.start()
            outcome = await b.executor.call(
                recorder, PROCUREMENT, "find_supplier", {"query": "Nag\ud800oya"}, call_id="c3"
            )
            assert outcome.status == "invalid"
            assert "not valid Unicode" in outcome.message
            assert b.sent == []
            step = project_run(b.store.read(recorder.run_id)).steps[outcome.step_id]
            assert step.step.arguments == {UNPARSED_ARGUMENTS: '{"query": "Nag\\ud800oya"}'}

    run(scenario())


def test_a_tool_that_crashes_fails_its_step_and_the_run_goes_on() -> None:
    from agentlab.tools import ToolRegistry, builtin_tools, tool
    from agentlab.tools.spec import ToolArguments

    class Divide(ToolArguments):
        """Divide by zero, as a buggy tool might."""

        numerator: int

    @tool(Divide, side_effect="read", scope="erp:read", system="erp_api")
    async def divide(args: Divide, ctx: object) -> object:
        return args.numerator / 0

    async def scenario() -> None:
        async with bench() as b:
            tools = ToolRegistry([*builtin_tools(), divide])
            b.executor.tools = tools
            data = default_policy().model_dump(mode="json", by_alias=True)
            data["use_cases"]["procurement"]["tools"].append("divide")
            b.executor.policy = policy_with(use_cases=data["use_cases"])
            recorder = b.start()
            outcome = await b.executor.call(recorder, PROCUREMENT, "divide", {"numerator": 1})
            assert outcome.status == "failed"
            assert "divide crashed: ZeroDivisionError" in outcome.message
            step = project_run(b.store.read(recorder.run_id)).steps[outcome.step_id]
            assert step.last_error is not None
            assert step.last_error.error_code == "tool_crashed"
            assert [r.decision for r in b.audit.read()][-1] == "failed"

    run(scenario())
