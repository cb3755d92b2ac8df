"""The run_command tool's schema and its place in the default policy; no process is started."""

from __future__ import annotations

from typing import Any

import pytest

from agentlab.policy import default_policy
from agentlab.policy.decide import check_call, offered_tools
from agentlab.tools import InvalidArguments, ToolSpec, builtin_tools
from agentlab.tools.shell import CommandResult, ScratchFile

VALID = {"argv": ["python3", "-c", "print(1)"], "stdin": None, "timeout_s": 10}


def spec() -> ToolSpec[Any]:
    found = builtin_tools().get("run_command")
    assert found is not None
    return found


def test_run_command_is_a_read_under_its_own_scope_and_system() -> None:
    tool = spec()
    assert not tool.is_write
    assert (tool.scope, tool.system) == ("shell:run", "command_sandbox")
    assert tool.targets(tool.validate(VALID)) == ("sandbox:command/python3",)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"argv": []}, "argv"),
        ({"argv": [""]}, "argv.0"),
        ({"argv": ["x"] * 65}, "argv"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 61}, "timeout_s"),
        ({"timeout_s": "5"}, "timeout_s"),
        ({"argv": "ls -la"}, "argv"),
        ({"memory_mb": 4096}, "memory_mb"),
        ({"argv": ["echo", "a\x00b"]}, "argv.1"),
        ({"argv": ["\x00"]}, "argv.0"),
        ({"stdin": "line\x00"}, "stdin"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        spec().validate({**VALID, **change})
    assert any(problem.startswith(f"{field}:") for problem in caught.value.problems)


def test_only_the_data_ops_actor_is_offered_run_command() -> None:
    policy, tools = default_policy(), list(builtin_tools())
    assert "run_command" in offered_tools(policy, actor="dana", use_case="data_ops", tools=tools)
    for actor, use_case in [("alice", "procurement"), ("bob", "helpdesk"), ("guest", "helpdesk")]:
        offered = offered_tools(policy, actor=actor, use_case=use_case, tools=tools)
        assert "run_command" not in offered
    verdict = check_call(policy, actor="alice", use_case="procurement", tool=spec())
    assert verdict.rule == "tool"


def test_a_result_reads_as_json_with_the_sandbox_and_why_it_was_chosen() -> None:
    result = CommandResult(
        exit_code=0,
        stdout="ok\n",
        stderr="",
        timed_out=False,
        killed=False,
        sandbox="bubblewrap",
        fallback_reason="gVisor (runsc) could not start: missing",
        scratch_files=(ScratchFile("out.csv", 12),),
        unenforced_limits=("memory of the whole sandbox: no cgroup",),
    )
    assert result.as_json() == {
        "exit_code": 0,
        "stdout": "ok\n",
        "stderr": "",
        "timed_out": False,
        "killed": False,
        "stdout_truncated": False,
        "stderr_truncated": False,
        "sandbox": "bubblewrap",
        "fallback_reason": "gVisor (runsc) could not start: missing",
        "scratch_files": [{"path": "out.csv", "size_bytes": 12}],
        "unenforced_limits": ["memory of the whole sandbox: no cgroup"],
        "sandbox_error": None,
    }
