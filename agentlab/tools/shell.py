"""The CLI tool: run one command in a sandbox with no network and one scratch directory.

The port is :class:`CommandSandbox`; its backends (gVisor, bubblewrap) live in
``agentlab.adapters.command_sandbox`` and reach the tool as the executor's ``sandbox``
resource. Nothing here runs a process.

``run_command`` is a *read*: the command sees a read-only system, no network, and a fresh
scratch directory that is deleted when the call ends, so no call can leave a change behind
in any system. A write would need a dry-run, which a command does not have, and would make
every call wait for approval for an effect that cannot happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol, runtime_checkable

from pydantic import Field, JsonValue

from agentlab.tools.context import Evidence, ToolContext, ToolOutput
from agentlab.tools.registry import tool
from agentlab.tools.spec import ToolArguments

SandboxKind = Literal["gvisor", "bubblewrap"]

SCRATCH_DIR = "/scratch"
"""Where the scratch directory appears inside the sandbox; the command starts in it."""

DEFAULT_MEMORY_MB = 512
"""The memory limit of a command run by the ``run_command`` tool."""


@dataclass(frozen=True)
class ScratchFile:
    """A file the command left in its scratch directory (deleted after the call)."""

    path: str
    """Relative to the scratch directory."""
    size_bytes: int


@dataclass(frozen=True)
class CommandResult:
    """What became of one sandboxed command."""

    exit_code: int | None
    """The command's exit status; None when it was killed before it exited."""
    stdout: str
    stderr: str
    timed_out: bool
    """True when the time limit was reached and the sandbox was killed."""
    killed: bool
    """True when the sandbox was killed (at the time limit, or by the kernel for memory)."""
    sandbox: SandboxKind
    """Which sandbox ran the command."""
    stdout_truncated: bool = False
    """True when stdout was longer than the cap and its end was dropped."""
    stderr_truncated: bool = False
    fallback_reason: str | None = None
    """Why the preferred sandbox was not used, when it was not (e.g. gVisor could not start)."""
    scratch_files: tuple[ScratchFile, ...] = ()
    """Files left in the scratch directory when the command ended (a capped listing)."""
    unenforced_limits: tuple[str, ...] = ()
    """Limits this sandbox could not enforce for this call, each with why (e.g. no cgroup)."""
    sandbox_error: str | None = None
    """Set when the sandbox itself failed under the command (then ``killed``, no exit code)."""

    def as_json(self) -> dict[str, JsonValue]:
        """The result as the model and the event log see it."""
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "timed_out": self.timed_out,
            "killed": self.killed,
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "sandbox": self.sandbox,
            "fallback_reason": self.fallback_reason,
            "scratch_files": [
                {"path": item.path, "size_bytes": item.size_bytes} for item in self.scratch_files
            ],
            "unenforced_limits": list(self.unenforced_limits),
            "sandbox_error": self.sandbox_error,
        }


@runtime_checkable
class CommandSandbox(Protocol):
    """Runs one command with no network, a read-only root and a fresh scratch directory.

    Every backend passes ``tests/integration/test_command_sandbox.py``: the command cannot
    reach the network, cannot write outside its scratch directory, and is killed with
    everything it started at its time limit. A backend never runs a command unconfined.
    """

    kind: SandboxKind
    """Which sandbox this is."""
    fallback_reason: str | None
    """Why this backend stands in for the preferred one; None when it is the preferred one."""
    unenforced_limits: tuple[str, ...]
    """Limits this backend cannot enforce on this host, each with why; empty when all hold."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout_s: float,
        memory_mb: int,
    ) -> CommandResult:
        """Run ``argv`` (no shell) in a fresh sandbox and return what it did.

        Args:
            argv: The program and its arguments; the program is looked up on the sandbox's
                ``PATH``.
            stdin: Text fed to the command; None gives it an empty input.
            timeout_s: Wall-clock limit, sandbox start included; at it the whole sandbox is
                killed and the result says ``timed_out``.
            memory_mb: Address-space limit of each process in the sandbox; where the
                backend has a cgroup, the whole sandbox is capped too.
        """
        ...


NO_NUL = r"^[^\x00]*$"
"""A NUL byte cannot be part of a program argument (the kernel ends the string there)."""

Arg = Annotated[str, Field(min_length=1, max_length=4096, pattern=NO_NUL)]


class RunCommand(ToolArguments):
    """Run one command in a sandbox: no network, read-only system, an empty scratch directory.

    No shell is involved unless you call one. The scratch directory is the working directory
    and is deleted after the call. Returns exit code, stdout, stderr and the files left in
    scratch.
    """

    argv: list[Arg] = Field(min_length=1, max_length=64)
    """The program and its arguments, e.g. ["python3", "-c", "print(2+2)"] or
    ["sh", "-c", "sort | uniq -c"]."""
    stdin: str | None = Field(max_length=65536, pattern=NO_NUL)
    """Text given to the command on standard input, or null for none (no NUL bytes)."""
    timeout_s: int = Field(ge=1, le=60)
    """Seconds before the command is killed, 1 to 60."""


def _argv_targets(args: RunCommand) -> tuple[str, ...]:
    return (f"sandbox:command/{args.argv[0]}",)


@tool(
    RunCommand,
    side_effect="read",
    scope="shell:run",
    system="command_sandbox",
    targets=_argv_targets,
    resources=("sandbox",),
)
async def run_command(args: RunCommand, ctx: ToolContext) -> ToolOutput:
    """Run the command in the executor's ``sandbox`` resource."""
    sandbox = ctx.resource("sandbox", CommandSandbox)
    outcome = await sandbox.run(
        args.argv, stdin=args.stdin, timeout_s=args.timeout_s, memory_mb=DEFAULT_MEMORY_MB
    )
    result = outcome.as_json()
    record = Evidence(
        "command_run",
        {
            "argv": list(args.argv),
            "sandbox": outcome.sandbox,
            "fallback_reason": outcome.fallback_reason,
            "unenforced_limits": list(outcome.unenforced_limits),
            "exit_code": outcome.exit_code,
            "timed_out": outcome.timed_out,
            "killed": outcome.killed,
            "sandbox_error": outcome.sandbox_error,
            "timeout_s": args.timeout_s,
            "memory_mb": DEFAULT_MEMORY_MB,
        },
    )
    return ToolOutput(result, evidence=(record,))
