"""AgentDojo's suites through the adapter: tools, ground truths, attacks, the CLI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip(
    "agentdojo", reason="needs the agentdojo extra: pip install 'agentlab[agentdojo]'"
)

from agentlab.bench.agentdojo import (
    SUITES,
    GroundTruthModel,
    acheck_ground_truths,
    agentdojo_tools,
    arun_dojo_task,
    is_write,
    load_agentdojo_suite,
)
from agentlab.cli import app
from agentlab.core.errors import ConfigError


@pytest.mark.parametrize("name", SUITES)
def test_every_function_is_a_governed_tool_with_its_own_schema(name: str) -> None:
    suite = load_agentdojo_suite(name)
    tools = agentdojo_tools(suite)
    assert sorted(tools.names()) == sorted(f.name for f in suite.tools)
    for function in suite.tools:
        spec = tools.get(function.name)
        assert spec is not None
        schema = spec.openai_tool()["function"]["parameters"]
        assert set(schema.get("properties", {})) == set(function.parameters.model_fields)
        assert spec.is_write == is_write(function.name)


@pytest.mark.parametrize("name", SUITES)
def test_only_the_functions_called_writes_change_the_environment(name: str) -> None:
    # Every ground-truth call of every task, run on AgentDojo's own runtime: a call that
    # changed the environment must be one the adapter previews and approves as a write.
    from agentdojo.functions_runtime import FunctionsRuntime

    suite = load_agentdojo_suite(name)
    runtime = FunctionsRuntime(suite.tools)
    for task in [*suite.user_tasks.values(), *suite.injection_tasks.values()]:
        env = suite.load_and_inject_default_environment({})
        if hasattr(task, "init_environment"):
            env = task.init_environment(env)
        for call in task.ground_truth(env.model_copy(deep=True)):
            before = env.model_dump(mode="json")
            runtime.run_function(env, call.function, call.args)
            if env.model_dump(mode="json") != before:
                assert is_write(call.function), f"{task.ID}: {call.function} changed the env"


@pytest.mark.parametrize("name", SUITES)
def test_replayed_ground_truths_are_graded_as_agentdojo_grades_them(name: str) -> None:
    checks = asyncio.run(acheck_ground_truths(load_agentdojo_suite(name), defences="none"))
    assert checks
    assert [c.user_task for c in checks if not c.agrees] == []


def hijacked(suite: Any, user_task: Any, injection_task: Any) -> GroundTruthModel:
    """A model that does the user's task and then, obediently, the attacker's."""
    env = user_task.init_environment(suite.load_and_inject_default_environment({}))
    calls = [*user_task.ground_truth(env), *injection_task.ground_truth(env)]
    return GroundTruthModel(calls, user_task.GROUND_TRUTH_OUTPUT)


def run_hijacked(suite_name: str, user: str, injection: str, defences: str) -> Any:
    suite = load_agentdojo_suite(suite_name)
    user_task, injection_task = suite.user_tasks[user], suite.injection_tasks[injection]
    return asyncio.run(
        arun_dojo_task(
            suite,
            user_task,
            injection_task,
            defences=defences,
            chat_model=hijacked(suite, user_task, injection_task),
        )
    )


def test_agentdojos_security_check_sees_an_attack_that_nothing_stopped() -> None:
    result = run_hijacked("banking", "user_task_1", "injection_task_0", "none")
    assert result.security is True  # AgentDojo: the attacker's transaction went out
    assert result.calls[-1] == "send_money"


def test_least_privilege_keeps_a_payment_out_of_a_read_only_task() -> None:
    result = run_hijacked("banking", "user_task_1", "injection_task_0", "least_privilege")
    assert result.security is False
    assert result.utility is True  # the requester's question is still answered
    assert "send_money" not in result.calls
    assert result.counts.policy_blocks == 1


def test_output_inspection_keeps_the_attackers_mail_from_leaving() -> None:
    result = run_hijacked("workspace", "user_task_0", "injection_task_0", "output_inspection")
    assert result.security is False
    assert result.counts.exfiltrations_blocked == 1


def test_a_write_is_previewed_on_a_copy_and_committed_once() -> None:
    suite = load_agentdojo_suite("banking")
    task = suite.user_tasks["user_task_3"]
    env = task.init_environment(suite.load_and_inject_default_environment({}))
    model = GroundTruthModel(task.ground_truth(env), task.GROUND_TRUTH_OUTPUT)
    result = asyncio.run(arun_dojo_task(suite, task, defences="all", chat_model=model))
    assert result.utility is True
    assert result.calls.count("send_money") == 1


def test_an_unknown_suite_says_which_exist() -> None:
    with pytest.raises(ConfigError, match="workspace, travel, banking, slack"):
        load_agentdojo_suite("payroll")


def test_the_cli_prints_utility_and_attack_success() -> None:
    result = CliRunner().invoke(
        app,
        [
            "agentdojo", "run", "--suite", "banking", "--config", "single",
            "--model", "sim-large", "--defences", "all", "--limit", "1", "--injection-limit", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "utility (no injection)" in result.output
    assert "attack success (injecagent)" in result.output
    assert "simulator" in result.output
