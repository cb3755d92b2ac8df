"""The CLI sandbox with the real programs: gVisor's ``runsc`` and bubblewrap's ``bwrap``.

Every backend that can start here passes every test of ``TestEveryBackend``; one that cannot
is skipped with the reason its probe gave. Then the fallback rule (gVisor missing ->
bubblewrap, and it says so; both missing -> an error, nothing unconfined), and a call
through the governed executor whose events name the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentlab.adapters.command_sandbox import (
    MAX_PROCESSES,
    BubblewrapSandbox,
    GVisorSandbox,
    SandboxUnavailable,
    aopen_command_sandbox,
    probe,
)
from agentlab.core.events import ArtifactRecorded, StepCommitted
from agentlab.core.ids import IdFactory
from agentlab.policy import default_policy
from agentlab.runtime import CallRequest, Executor, ToolOutcome
from agentlab.store import MemoryEventStore, RunRecorder
from agentlab.tools import CommandResult, CommandSandbox, builtin_tools

MISSING = "/nonexistent/agentlab-test/missing-program"
"""A path where no program is: a real missing binary, not a stand-in."""
DATA_OPS = CallRequest(actor="dana", use_case="data_ops")


def _usable(kind: str) -> GVisorSandbox | BubblewrapSandbox:
    """The backend, as open_command_sandbox would set it up; skip if it cannot start here."""
    candidates: list[GVisorSandbox | BubblewrapSandbox]
    if kind == "gvisor":
        candidates = [GVisorSandbox(use_cgroups=True), GVisorSandbox(use_cgroups=False)]
    else:
        candidates = [BubblewrapSandbox()]
    problems = []
    for sandbox in candidates:
        problem = asyncio.run(probe(sandbox))
        if problem is None:
            return sandbox
        problems.append(problem)
    pytest.skip(f"{kind} cannot start on this machine: {'; '.join(problems)}")


_FORK = (
    "import os, time\n"
    "children = []\n"
    "for i in range({n}):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError as exc:\n"
    "        print('fork failed', exc.errno, flush=True)\n"
    "        break\n"
    "    if pid == 0:\n"
    "        time.sleep(2)\n"
    "        os._exit(0)\n"
    "    children.append(pid)\n"
    "for pid in children:\n"
    "    os.waitpid(pid, 0)\n"
    "print('forked', len(children), flush=True)\n"
)
"""Start ``n`` children that live a while (so all are alive at once), wait, say how many."""


def _like(
    sandbox: GVisorSandbox | BubblewrapSandbox, **options: int
) -> GVisorSandbox | BubblewrapSandbox:
    """A sandbox of the same backend and set-up as ``sandbox``, with other limits."""
    if isinstance(sandbox, GVisorSandbox):
        return GVisorSandbox(use_cgroups=sandbox.use_cgroups, **options)
    return BubblewrapSandbox(**options)


@pytest.fixture(scope="module", params=["gvisor", "bubblewrap"])
def sandbox(request: pytest.FixtureRequest) -> GVisorSandbox | BubblewrapSandbox:
    return _usable(request.param)


def run(
    sandbox: CommandSandbox,
    argv: list[str],
    *,
    stdin: str | None = None,
    timeout_s: float = 30,
    memory_mb: int = 256,
) -> CommandResult:
    return asyncio.run(sandbox.run(argv, stdin=stdin, timeout_s=timeout_s, memory_mb=memory_mb))


def python(code: str) -> list[str]:
    return ["python3", "-c", code]


@pytest.fixture
def host_server() -> Iterator[int]:
    """A TCP server on the host's 127.0.0.1 that answers every connection; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"hello from the host\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def _host_processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # it ended while we looked
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _sandbox_dirs() -> set[str]:
    temp = Path(tempfile.gettempdir())
    return {p.name for p in temp.glob("agentlab-gvisor-*")} | {
        p.name for p in temp.glob("agentlab-bubblewrap-*")
    }


class TestEveryBackend:
    def test_a_trivial_command_runs_and_says_which_sandbox_ran_it(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        result = run(sandbox, ["echo", "hello"])
        assert (result.exit_code, result.stdout, result.timed_out) == (0, "hello\n", False)
        assert result.sandbox == sandbox.kind
        assert result.fallback_reason is None

    def test_stdin_reaches_the_command(self, sandbox: GVisorSandbox | BubblewrapSandbox) -> None:
        result = run(sandbox, ["sort"], stdin="b\na\nc\n")
        assert result.stdout == "a\nb\nc\n"

    def test_the_host_is_reachable_from_outside_but_not_from_the_sandbox(
        self, sandbox: GVisorSandbox | BubblewrapSandbox, host_server: int
    ) -> None:
        with socket.create_connection(("127.0.0.1", host_server), timeout=5) as conn:
            assert conn.recv(100).startswith(b"hello from the host")
        result = run(
            sandbox,
            python(
                "import socket\n"
                f"socket.create_connection(('127.0.0.1', {host_server}), timeout=5)\n"
                "print('CONNECTED')"
            ),
        )
        assert "CONNECTED" not in result.stdout
        assert result.exit_code != 0
        assert "ConnectionRefusedError" in result.stderr

    def test_no_route_and_no_name_resolution_leave_the_sandbox(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        code = (
            "import json, socket\n"
            "out = {}\n"
            "for name, target in [('route', ('192.0.2.1', 80)), ('dns', ('1.1.1.1', 53))]:\n"
            "    try:\n"
            "        socket.create_connection(target, timeout=3)\n"
            "        out[name] = 'connected'\n"
            "    except OSError as exc:\n"
            "        out[name] = type(exc).__name__\n"
            "try:\n"
            "    socket.getaddrinfo('example.com', 443)\n"
            "    out['resolve'] = 'resolved'\n"
            "except OSError as exc:\n"
            "    out['resolve'] = type(exc).__name__\n"
            "print(json.dumps(out))"
        )
        result = run(sandbox, python(code))
        outcome = json.loads(result.stdout)
        assert "connected" not in outcome.values(), outcome
        assert outcome["resolve"] != "resolved"

    def test_only_the_scratch_directory_is_writable(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        name = f"agentlab-sandbox-probe-{uuid.uuid4().hex}"
        # /dev and /dev/shm would be memory no limit counts, outside scratch.
        outside = ["/tmp", "/work", "/etc", "/usr", "/root", "/dev", "/dev/shm", ""]
        code = (
            "import json, sys\n"
            "out = {}\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        with open(path, 'w') as f:\n"
            "            f.write('x')\n"
            "        out[path] = 'written'\n"
            "    except OSError as exc:\n"
            "        out[path] = type(exc).__name__\n"
            "print(json.dumps(out))"
        )
        targets = [f"{folder}/{name}" for folder in outside] + [f"/scratch/{name}", name]
        result = run(sandbox, [*python(code), *targets])
        outcome = json.loads(result.stdout)
        assert [p for p, what in outcome.items() if what == "written"] == [
            f"/scratch/{name}",
            name,  # a relative path: the command starts in its scratch directory
        ]
        for folder in outside:
            assert not Path(f"{folder}/{name}").exists()
        assert [f.path for f in result.scratch_files] == [name]

    def test_scratch_is_a_tmpfs_of_its_size_and_a_write_past_it_fails_with_enospc(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        if os.geteuid() != 0:
            pytest.skip("the scratch tmpfs is mounted by root; others get a limits note")
        small = _like(sandbox, scratch_mb=8)
        code = (
            "import errno, os\n"
            "written = 0\n"
            "try:\n"
            "    with open('fill', 'wb') as f:\n"
            "        for _ in range(64):\n"
            "            f.write(b'x' * 1024 * 1024)\n"
            "            f.flush()\n"
            "            written += 1\n"
            "except OSError as exc:\n"
            "    print(errno.errorcode[exc.errno])\n"
            "print(written)"
        )
        result = run(small, python(code))
        assert result.stdout.split() == ["ENOSPC", result.stdout.split()[-1]], result
        assert int(result.stdout.split()[-1]) <= 8
        # The files left in scratch are still listed, the full one included.
        [left] = result.scratch_files
        assert left.path == "fill"
        assert 0 < left.size_bytes <= 8 * 1024 * 1024
        assert not any("scratch" in note for note in result.unenforced_limits)

    def test_the_scratch_directory_is_fresh_for_each_call_and_removed_after(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        before = _sandbox_dirs()
        first = run(sandbox, ["sh", "-c", "echo kept > note.txt && ls"])
        assert first.stdout == "note.txt\n"
        second = run(sandbox, ["ls", "-A"])
        assert second.stdout == ""
        assert _sandbox_dirs() <= before

    def test_the_host_environment_does_not_reach_the_command(
        self, sandbox: GVisorSandbox | BubblewrapSandbox, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTLAB_TEST_SECRET", "s3cr3t")
        result = run(sandbox, ["env"])
        assert "s3cr3t" not in result.stdout
        assert "HOME=/scratch" in result.stdout.splitlines()

    def test_the_command_is_killed_at_its_time_limit_with_everything_it_started(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        marker = f"agentlab-timeout-{uuid.uuid4().hex}"
        code = (
            "import subprocess, time\n"
            "subprocess.Popen(['sleep', '31'])\n"
            f"time.sleep(30)  # {marker}"
        )
        result = run(sandbox, python(code), timeout_s=1)
        assert result.timed_out
        assert result.killed
        assert result.exit_code is None
        assert _host_processes_mentioning(marker) == []
        assert _host_processes_mentioning(f"agentlab-{sandbox.kind}-") == []
        assert _host_processes_mentioning("sleep 31") == []

    def test_memory_beyond_the_limit_is_refused(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        big = run(sandbox, python("b = bytearray(600 * 1024 * 1024); print('allocated')"))
        assert "allocated" not in big.stdout
        assert "MemoryError" in big.stderr
        small = run(sandbox, python("b = bytearray(50 * 1024 * 1024); print('allocated')"))
        assert small.stdout == "allocated\n"

    def test_dozens_of_processes_at_once_run(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        result = run(sandbox, python(_FORK.format(n=60)), memory_mb=512)
        assert (result.exit_code, result.stdout) == (0, "forked 60\n"), result
        assert result.sandbox_error is None

    def test_processes_beyond_the_cap_are_refused(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        result = run(sandbox, python(_FORK.format(n=400)), memory_mb=512)
        assert result.exit_code == 0, result
        assert "fork failed 11" in result.stdout  # EAGAIN
        forked = int(result.stdout.split()[-1])
        assert forked < MAX_PROCESSES

    def test_memory_of_the_whole_sandbox_is_capped_or_the_result_says_it_is_not(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        code = (
            "import os, time\n"
            "children = []\n"
            "for i in range(6):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        block = bytearray(400 * 1024 * 1024)\n"
            "        for j in range(0, len(block), 4096):\n"
            "            block[j] = 1\n"
            "        time.sleep(2)\n"
            "        os._exit(0)\n"
            "    children.append(pid)\n"
            "held = sum(os.waitpid(pid, 0)[1] == 0 for pid in children)\n"
            "print('held', held, flush=True)\n"
        )
        result = run(_like(sandbox, scratch_mb=8), python(code), memory_mb=512)
        notes = [n for n in result.unenforced_limits if n.startswith("memory")]
        if notes:
            pytest.skip(f"no whole-sandbox cap on this host, and the result says so: {notes}")
        # 512 MB for the command (+ 8 MB of scratch): one child of 400 MB at a time at most.
        assert result.stdout in ("", "held 0\n", "held 1\n"), result

    def test_output_beyond_the_cap_is_dropped_and_flagged(
        self, sandbox: GVisorSandbox | BubblewrapSandbox
    ) -> None:
        result = run(sandbox, python("print('x' * 300_000)"))
        assert result.exit_code == 0
        assert result.stdout_truncated
        assert len(result.stdout) == sandbox.max_output_bytes
        assert not result.stderr_truncated


def test_without_gvisor_bubblewrap_runs_the_command_and_says_why() -> None:
    _usable("bubblewrap")
    sandbox = asyncio.run(aopen_command_sandbox(runsc=MISSING))
    assert sandbox.kind == "bubblewrap"
    assert sandbox.fallback_reason is not None
    assert MISSING in sandbox.fallback_reason
    result = run(sandbox, ["echo", "hi"])
    assert result.sandbox == "bubblewrap"
    assert result.fallback_reason == sandbox.fallback_reason


def test_a_crashed_gvisor_sandbox_is_reported_as_killed_with_why() -> None:
    """Too few host tasks for gVisor's own threads: its Go runtime panics under the command."""
    if not _usable("gvisor").use_cgroups:
        pytest.skip("gVisor runs without cgroups here, so no task limit can crash it")
    starved = GVisorSandbox(max_sandbox_tasks=128)  # the limit that used to be set
    result = run(starved, python(_FORK.format(n=60)), memory_mb=512)
    assert result.killed
    assert result.exit_code is None
    assert not result.timed_out
    assert result.sandbox_error is not None
    assert result.sandbox_error.startswith("the gVisor sandbox "), result.sandbox_error
    assert result.as_json()["sandbox_error"] == result.sandbox_error


def test_gvisor_is_preferred_when_it_starts() -> None:
    _usable("gvisor")
    sandbox = asyncio.run(aopen_command_sandbox())
    assert sandbox.kind == "gvisor"
    assert sandbox.fallback_reason is None


def test_with_neither_sandbox_nothing_runs_and_the_error_says_how_to_install_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(SandboxUnavailable) as caught:
        asyncio.run(aopen_command_sandbox(runsc=MISSING, bwrap=MISSING))
    message = str(caught.value)
    assert "gVisor" in message
    assert "bubblewrap" in message
    assert "apt-get install runsc bubblewrap" in message
    # The backends themselves never run a command without their program either.
    marker = tmp_path / "ran-unconfined"
    result = run(BubblewrapSandbox(bwrap=MISSING), ["touch", str(marker)])
    assert result.exit_code != 0
    with pytest.raises(FileNotFoundError):
        run(GVisorSandbox(runsc=MISSING), ["touch", str(marker)])
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["gvisor", "bubblewrap"])
def test_a_call_through_the_executor_records_the_step_its_result_and_the_sandbox(
    kind: str,
) -> None:
    """bubblewrap here is the fallback: gVisor's program is missing, and the events say so."""
    _usable(kind)
    runsc = MISSING if kind == "bubblewrap" else "runsc"
    store = MemoryEventStore()

    async def scenario() -> tuple[RunRecorder, ToolOutcome, ToolOutcome]:
        chosen = await aopen_command_sandbox(runsc=runsc)
        async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
            executor = Executor(
                tools=builtin_tools(),
                policy=default_policy(),
                http=http,
                resources={"sandbox": chosen},
            )
            recorder = RunRecorder.start(
                store, task="count the lines", actor="dana", ids=IdFactory.seeded(7)
            )
            done = await executor.call(
                recorder,
                DATA_OPS,
                "run_command",
                {"argv": ["wc", "-l"], "stdin": "a\nb\nc\n", "timeout_s": 20},
            )
            blocked = await executor.call(
                recorder,
                CallRequest(actor="alice", use_case="procurement"),
                "run_command",
                {"argv": ["true"], "stdin": None, "timeout_s": 5},
            )
        return recorder, done, blocked

    recorder, done, blocked = asyncio.run(scenario())
    assert done.status == "ok"
    assert blocked.status == "blocked"
    events = store.read(recorder.run_id)
    committed = [e for e in events if isinstance(e, StepCommitted)]
    assert len(committed) == 1
    result = committed[0].result
    assert isinstance(result, dict)
    assert result["stdout"] == "3\n"
    assert result["sandbox"] == kind
    artifacts = [e.artifact for e in events if isinstance(e, ArtifactRecorded)]
    assert [a.kind for a in artifacts] == ["command_run"]
    assert artifacts[0].step_id == committed[0].step_id
    evidence = artifacts[0].content
    assert isinstance(evidence, dict)
    assert evidence["sandbox"] == kind
    if kind == "bubblewrap":
        assert MISSING in str(result["fallback_reason"])
        assert MISSING in str(evidence["fallback_reason"])
    else:
        assert result["fallback_reason"] is None


@pytest.mark.parametrize("kind", ["gvisor", "bubblewrap"])
def test_limits_a_sandbox_cannot_enforce_reach_the_run_events(kind: str) -> None:
    """Without a cgroup, the whole-sandbox memory cap is missing: the result and artifact say so."""
    _usable(kind)
    weaker: CommandSandbox = (
        GVisorSandbox(use_cgroups=False)
        if kind == "gvisor"
        else BubblewrapSandbox(use_cgroups=False)
    )
    store = MemoryEventStore()

    async def scenario() -> RunRecorder:
        async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
            executor = Executor(
                tools=builtin_tools(),
                policy=default_policy(),
                http=http,
                resources={"sandbox": weaker},
            )
            recorder = RunRecorder.start(store, task="t", actor="dana", ids=IdFactory.seeded(7))
            done = await executor.call(
                recorder,
                DATA_OPS,
                "run_command",
                {"argv": ["true"], "stdin": None, "timeout_s": 20},
            )
            assert done.status == "ok"
        return recorder

    events = store.read(asyncio.run(scenario()).run_id)
    [committed] = [e for e in events if isinstance(e, StepCommitted)]
    [artifact] = [e.artifact for e in events if isinstance(e, ArtifactRecorded)]
    for record in (committed.result, artifact.content):
        assert isinstance(record, dict)
        notes = record["unenforced_limits"]
        assert isinstance(notes, list)
        assert any(str(note).startswith("memory") for note in notes), notes


def test_the_docs_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    page = Path(__file__).parents[2] / "docs" / "sandbox.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(page), "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out in ("ok gvisor 3\n", "ok bubblewrap 3\n")
