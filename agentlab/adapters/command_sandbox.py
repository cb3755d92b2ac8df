"""Command sandboxes: gVisor (``runsc``) first, bubblewrap (``bwrap``) when gVisor cannot start.

Both give a command the same view: the host's system directories (``/usr``, ``/etc`` and the
``/bin``, ``/lib`` ... links or directories) read-only, ``/proc``, a minimal read-only
``/dev``, and one writable directory, ``/scratch``, fresh for each call and deleted after it:
a tmpfs of ``scratch_mb`` (256 MB) mounted host-side when the host side is root, so a write
past it fails with ``ENOSPC`` and the files left can still be listed. There is no
network (an empty network namespace: loopback only), no ``/tmp``, no host home or work
directories, and the command runs as ``nobody`` when the host side runs as root.

What is enforced where:

* gVisor: an OCI bundle run with ``runsc run`` (``runsc do`` mounts the host root with a
  writable overlay and cannot bind one writable directory). The root is an empty read-only
  directory holding only mount points -- binding over the host root would let runsc's gofer
  create mount points on the host. ``--network=none``; ``--overlay2=none`` so writes fail
  instead of landing in a memory overlay; ``RLIMIT_AS``, ``RLIMIT_FSIZE`` and
  ``RLIMIT_NPROC`` (gVisor's kernel enforces them); and, where the host's cgroups allow it,
  a memory and host-task cgroup on the whole sandbox (gVisor's own kernel included), made
  under our own cgroup. runsc's log goes to the work directory; when the sandbox itself
  dies under the command the result says ``killed`` and ``sandbox_error`` says why.
* bubblewrap: the same view from a tmpfs root remounted read-only, ``--unshare-all``
  (network, PID, IPC, UTS, user, cgroup namespaces), ``--die-with-parent``,
  ``--new-session``; ``RLIMIT_AS`` and ``RLIMIT_FSIZE`` through ``prlimit``. As root it
  first drops to ``nobody`` with ``setpriv`` so the user namespace maps to an unprivileged
  host user; ``/dev`` is remounted read-only. ``RLIMIT_NPROC`` too, which counts all of
  ``nobody``'s processes. Where a cgroup can be made under our own (v1 or v2), each sandbox
  is put in one capping its memory and processes as a whole.

A limit a backend cannot enforce on this host (no cgroup; no tmpfs without root) is named in
every result's ``unenforced_limits``, so the run's events say so.

At the time limit the whole sandbox is killed (``runsc kill`` and ``runsc delete --force``;
bubblewrap's process group, whose PID namespace dies with it) and the result says
``timed_out``. Output beyond the cap is read and dropped, and the result says so.

:func:`open_command_sandbox` probes gVisor once with a trivial command and falls back to
bubblewrap, recording why; when neither starts it raises :class:`SandboxUnavailable`. There
is no unconfined fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from agentlab.core.errors import AgentlabError
from agentlab.tools.shell import SCRATCH_DIR, CommandResult, SandboxKind, ScratchFile

log = logging.getLogger(__name__)

SYSTEM_DIRS = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
"""Top-level host directories the sandbox sees read-only (those that exist)."""

NOBODY = 65534
"""The uid and gid a command runs as when the host side is root."""

SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME": SCRATCH_DIR,
    "TMPDIR": SCRATCH_DIR,
    "LANG": "C.UTF-8",
}
"""The command's whole environment: nothing of the host's (no keys, no tokens) gets in."""

MAX_OUTPUT_BYTES = 64 * 1024
"""Bytes of stdout and of stderr kept per call; the rest is read and dropped."""
MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest file a command may write (``RLIMIT_FSIZE``)."""
MAX_PROCESSES = 128
"""Processes the command may have at once (``RLIMIT_NPROC``, enforced by gVisor's kernel)."""
MAX_SANDBOX_TASKS = 1024
"""Host tasks (threads) of one gVisor sandbox, in its cgroup: gVisor's own threads count
here, not the command's processes, and too few crash the sandbox (Go cannot start a thread)."""
SANDBOX_OVERHEAD_MB = 256
"""Memory for gVisor's own kernel on top of the command's, in the whole-sandbox cgroup."""
BWRAP_OVERHEAD_MB = 16
"""Memory for bubblewrap's own processes on top of the command's, in its cgroup."""
SCRATCH_MB = 256
"""Size of the scratch tmpfs: a write past it fails with ``ENOSPC``."""
MAX_SCRATCH_LISTING = 50
_GRACE_S = 5.0
"""How long to wait for pipes and processes after a kill before giving up on them."""


class SandboxUnavailable(AgentlabError):
    """No sandbox could start; commands are not run at all (never unconfined)."""

    code = "SANDBOX_UNAVAILABLE"


@dataclass(frozen=True)
class _Call:
    argv: list[str]
    stdin: str | None
    timeout_s: float
    memory_mb: int


@dataclass(frozen=True)
class _Finished:
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool
    killed: bool
    sandbox_error: str | None = None
    unenforced: tuple[str, ...] = ()


class _Sandbox:
    """What both backends share: the scratch directory, limits, output caps, the kill."""

    kind: ClassVar[SandboxKind]

    def __init__(
        self,
        *,
        system_dirs: Sequence[str] = SYSTEM_DIRS,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        max_file_bytes: int = MAX_FILE_BYTES,
        scratch_mb: int = SCRATCH_MB,
        fallback_reason: str | None = None,
    ) -> None:
        self.system_dirs = tuple(system_dirs)
        self.max_output_bytes = max_output_bytes
        self.max_file_bytes = max_file_bytes
        self.scratch_mb = scratch_mb
        self.fallback_reason = fallback_reason
        self.unenforced_limits: tuple[str, ...] = ()
        self._as_nobody = os.geteuid() == 0

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout_s: float,
        memory_mb: int,
    ) -> CommandResult:
        """Run ``argv`` in a fresh sandbox; see :class:`agentlab.tools.shell.CommandSandbox`."""
        if not argv:
            raise ValueError("argv is empty: give at least the program to run")
        if any("\0" in arg for arg in argv):
            raise ValueError("an argument holds a NUL byte, which no program can receive")
        unenforced = list(self.unenforced_limits)
        work = Path(tempfile.mkdtemp(prefix=f"agentlab-{self.kind}-"))
        scratch = work / "scratch"
        mounted = False
        try:
            scratch.mkdir()
            mounted = await self._mount_scratch(scratch)
            if not mounted:
                unenforced.append(
                    f"scratch size ({self.scratch_mb} MB): a tmpfs could not be mounted "
                    "(it needs root), so scratch is a directory on the host's disk"
                )
            if self._as_nobody:
                os.chown(scratch, NOBODY, NOBODY)
                work.chmod(0o711)  # nobody may pass through to scratch, not list the rest
            call = _Call(list(argv), stdin, timeout_s, memory_mb)
            finished = await self._run_in(work, scratch, call)
            unenforced += finished.unenforced
            files = _list_scratch(scratch)
        finally:
            if mounted:  # lazily: a process of runsc's may still hold it for a moment
                await _quiet(["umount", "--lazy", str(scratch)])
            shutil.rmtree(work, ignore_errors=True)
        return CommandResult(
            exit_code=finished.exit_code,
            stdout=finished.stdout.decode("utf-8", errors="replace"),
            stderr=finished.stderr.decode("utf-8", errors="replace"),
            timed_out=finished.timed_out,
            killed=finished.killed,
            sandbox=self.kind,
            stdout_truncated=finished.stdout_truncated,
            stderr_truncated=finished.stderr_truncated,
            fallback_reason=self.fallback_reason,
            scratch_files=files,
            unenforced_limits=tuple(unenforced),
            sandbox_error=finished.sandbox_error,
        )

    async def _mount_scratch(self, scratch: Path) -> bool:
        """Mount a tmpfs of ``scratch_mb`` on ``scratch``; False where that is not allowed.

        The tmpfs is mounted on the host side, so the files left in it can still be listed
        after the sandbox is gone; its pages count in the sandbox's memory cgroup.
        """
        if not self._as_nobody:  # mounting needs root; unprivileged callers keep a directory
            return False
        options = f"size={self.scratch_mb}m,mode=0700,uid={NOBODY},gid={NOBODY},nosuid,nodev"
        return await _succeeds(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(scratch)])

    async def _run_in(self, work: Path, scratch: Path, call: _Call) -> _Finished:
        raise NotImplementedError

    def _visible_dirs(self) -> list[tuple[str, str | None]]:
        """(name, link target or None) for each system directory the host has."""
        found: list[tuple[str, str | None]] = []
        for name in self.system_dirs:
            path = Path("/") / name
            if path.is_symlink():
                found.append((name, os.readlink(path)))
            elif path.is_dir():
                found.append((name, None))
        return found

    async def _supervise(
        self,
        command: list[str],
        call: _Call,
        *,
        kill: _Killer,
    ) -> _Finished:
        """Start ``command`` in its own session, cap its output, kill it at the deadline."""
        stdin, timeout_s = call.stdin, call.timeout_s
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        readers = [
            asyncio.ensure_future(_read_capped(process.stdout, self.max_output_bytes)),
            asyncio.ensure_future(_read_capped(process.stderr, self.max_output_bytes)),
        ]
        if stdin is not None:
            feeder = asyncio.ensure_future(_feed(process, stdin.encode()))
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
            await kill(process)
        finally:
            if process.returncode is None:  # cancelled: never leave the sandbox running
                await kill(process)
        if stdin is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        done, pending = await asyncio.wait(readers, timeout=_GRACE_S)
        for reader in pending:
            reader.cancel()
        (out, out_cut), (err, err_cut) = [
            reader.result() if reader in done else (b"", True) for reader in readers
        ]
        code = process.returncode
        killed = timed_out or (code is not None and code < 0) or code == 128 + signal.SIGKILL
        return _Finished(
            exit_code=None if timed_out or (code is not None and code < 0) else code,
            stdout=out,
            stderr=err,
            stdout_truncated=out_cut,
            stderr_truncated=err_cut,
            timed_out=timed_out,
            killed=killed,
        )


class _Killer:
    """Kills a sandbox and everything in it; each backend knows how."""

    async def __call__(self, process: asyncio.subprocess.Process) -> None:
        _kill_group(process)
        await _reap(process)


class GVisorSandbox(_Sandbox):
    """Commands under gVisor: ``runsc run`` over a generated OCI bundle.

    Args:
        runsc: The ``runsc`` program (a name on ``PATH`` or a path).
        use_cgroups: Also cap the whole sandbox's memory and host tasks with a cgroup;
            :func:`open_command_sandbox` turns this off where the host has no cgroups.
        max_sandbox_tasks: Host tasks (gVisor's threads) allowed in that cgroup.
        platform: gVisor's platform (``ptrace``, ``systrap``, ``kvm``); None for runsc's
            default.
        system_dirs: Top-level host directories shown read-only.
        max_output_bytes: Bytes of stdout and of stderr kept.
        max_file_bytes: Largest file the command may write.
        scratch_mb: Size of the scratch tmpfs (where the host side runs as root).
        fallback_reason: Set when this sandbox stands in for another.
    """

    kind: ClassVar[SandboxKind] = "gvisor"

    def __init__(
        self,
        *,
        runsc: str = "runsc",
        use_cgroups: bool = True,
        max_sandbox_tasks: int = MAX_SANDBOX_TASKS,
        platform: str | None = None,
        system_dirs: Sequence[str] = SYSTEM_DIRS,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        max_file_bytes: int = MAX_FILE_BYTES,
        scratch_mb: int = SCRATCH_MB,
        fallback_reason: str | None = None,
    ) -> None:
        super().__init__(
            system_dirs=system_dirs,
            max_output_bytes=max_output_bytes,
            max_file_bytes=max_file_bytes,
            scratch_mb=scratch_mb,
            fallback_reason=fallback_reason,
        )
        self.runsc = runsc
        self.use_cgroups = use_cgroups
        self.max_sandbox_tasks = max_sandbox_tasks
        if not use_cgroups:
            self.unenforced_limits = (
                "memory of the whole sandbox: runsc runs without a cgroup here "
                "(--ignore-cgroups), so each process has only its own RLIMIT_AS",
            )
        self.platform = platform

    def bundle(
        self, work: Path, scratch: Path, argv: list[str], memory_mb: int
    ) -> dict[str, object]:
        """The OCI ``config.json`` for one call, creating its empty root under ``work``."""
        rootfs, empty = work / "rootfs", work / "empty"
        rootfs.mkdir()
        empty.mkdir()
        mounts: list[dict[str, object]] = [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "noexec", "mode=755"],
            },
        ]
        for name, link in self._visible_dirs():
            if link is not None:
                (rootfs / name).symlink_to(link)
                continue
            (rootfs / name).mkdir()
            mounts.append(_bind(f"/{name}", f"/{name}", writable=False))
        # gVisor mounts a writable tmpfs on /tmp unless the spec mounts something there.
        for name in ("proc", "dev", "tmp", SCRATCH_DIR.strip("/")):
            (rootfs / name).mkdir(exist_ok=True)
        mounts.append(_bind("/tmp", str(empty), writable=False))
        mounts.append(_bind(SCRATCH_DIR, str(scratch), writable=True))
        memory = memory_mb * 1024 * 1024
        config: dict[str, object] = {
            "ociVersion": "1.0.0",
            "process": {
                "terminal": False,
                "user": {"uid": NOBODY, "gid": NOBODY},
                "args": argv,
                "env": [f"{key}={value}" for key, value in SANDBOX_ENV.items()],
                "cwd": SCRATCH_DIR,
                "rlimits": [
                    {"type": "RLIMIT_AS", "hard": memory, "soft": memory},
                    {
                        "type": "RLIMIT_FSIZE",
                        "hard": self.max_file_bytes,
                        "soft": self.max_file_bytes,
                    },
                    {"type": "RLIMIT_NPROC", "hard": MAX_PROCESSES, "soft": MAX_PROCESSES},
                ],
                "noNewPrivileges": True,
                "capabilities": {
                    key: []
                    for key in ("bounding", "effective", "inheritable", "permitted", "ambient")
                },
            },
            "root": {"path": str(rootfs), "readonly": True},
            "hostname": "sandbox",
            "mounts": mounts,
            "linux": {
                "namespaces": [
                    {"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount")
                ],
            },
        }
        if self.use_cgroups:
            # The scratch tmpfs's pages may be charged here too.
            total = (memory_mb + self.scratch_mb + SANDBOX_OVERHEAD_MB) * 1024 * 1024
            config["linux"]["resources"] = {  # type: ignore[index]
                "memory": {"limit": total},
                "pids": {"limit": self.max_sandbox_tasks},
            }
            # Relative: under our own cgroup, so the host's limits on us hold for it too
            # (without a path runsc makes one at the hierarchy's root, outside them).
            config["linux"]["cgroupsPath"] = work.name  # type: ignore[index]
        return config

    def command(self, work: Path, container_id: str) -> list[str]:
        """The ``runsc run`` command line for the bundle in ``work``."""
        flags = [
            f"--root={work / 'state'}",
            f"--debug-log={work / 'logs'}/",  # why a sandbox crashed; deleted with work
            "--network=none",
            "--overlay2=none",
        ]
        if not self.use_cgroups:
            flags.append("--ignore-cgroups")
        if self.platform:
            flags.append(f"--platform={self.platform}")
        return [self.runsc, *flags, "run", f"--bundle={work}", container_id]

    async def _run_in(self, work: Path, scratch: Path, call: _Call) -> _Finished:
        config = self.bundle(work, scratch, call.argv, call.memory_mb)
        (work / "config.json").write_text(json.dumps(config))
        container_id = f"agentlab-{uuid.uuid4().hex[:16]}"
        kill = _RunscKiller(self.runsc, work / "state", container_id)
        try:
            finished = await self._supervise(self.command(work, container_id), call, kill=kill)
        finally:
            await kill.delete()
        crash = _runsc_crash(work / "logs")
        if crash is None or finished.timed_out:
            return finished
        # The exit code is the sandbox's (Go's 2 after a panic), not the command's.
        return dataclasses.replace(finished, exit_code=None, killed=True, sandbox_error=crash)


class _RunscKiller(_Killer):
    def __init__(self, runsc: str, state: Path, container_id: str) -> None:
        self._base = [runsc, f"--root={state}"]
        self._id = container_id
        self._state = state

    async def __call__(self, process: asyncio.subprocess.Process) -> None:
        await _quiet([*self._base, "kill", "--all", self._id, "KILL"])
        _kill_group(process)
        await _reap(process)

    async def delete(self) -> None:
        """Remove the container's state (and its cgroup), whatever became of it."""
        if self._state.exists():
            await _quiet([*self._base, "delete", "--force", self._id])


class BubblewrapSandbox(_Sandbox):
    """Commands under bubblewrap (Debian's ``bubblewrap``), when gVisor cannot start.

    Args:
        bwrap: The ``bwrap`` program (a name on ``PATH`` or a path).
        use_cgroups: Put each sandbox in a cgroup of its own, capping its memory and
            processes as a whole, where the host lets us create one; each result says when
            that was not possible.
        system_dirs: Top-level host directories shown read-only.
        max_output_bytes: Bytes of stdout and of stderr kept.
        max_file_bytes: Largest file the command may write.
        scratch_mb: Size of the scratch tmpfs (where the host side runs as root).
        fallback_reason: Why this stands in for gVisor; every result carries it.
    """

    kind: ClassVar[SandboxKind] = "bubblewrap"

    def __init__(
        self,
        *,
        bwrap: str = "bwrap",
        use_cgroups: bool = True,
        system_dirs: Sequence[str] = SYSTEM_DIRS,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        max_file_bytes: int = MAX_FILE_BYTES,
        scratch_mb: int = SCRATCH_MB,
        fallback_reason: str | None = None,
    ) -> None:
        super().__init__(
            system_dirs=system_dirs,
            max_output_bytes=max_output_bytes,
            max_file_bytes=max_file_bytes,
            scratch_mb=scratch_mb,
            fallback_reason=fallback_reason,
        )
        self.bwrap = bwrap
        self.use_cgroups = use_cgroups

    def command(self, scratch: Path, argv: list[str], memory_mb: int) -> list[str]:
        """The full command line: rlimits, the drop to ``nobody`` as root, then bwrap.

        ``RLIMIT_NPROC`` counts every process of the real user: as ``nobody`` that is the
        sandboxes running at the same time, together.
        """
        memory = memory_mb * 1024 * 1024
        limits = [
            "prlimit",
            f"--as={memory}",
            f"--fsize={self.max_file_bytes}",
            f"--nproc={MAX_PROCESSES}",
            "--",
        ]
        drop = []
        if self._as_nobody:
            drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        view = ["--tmpfs", "/"]
        for name, link in self._visible_dirs():
            view += (
                ["--symlink", link, f"/{name}"] if link else ["--ro-bind", f"/{name}", f"/{name}"]
            )
        env = ["--clearenv"]
        for key, value in SANDBOX_ENV.items():
            env += ["--setenv", key, value]
        return [
            *limits,
            *drop,
            self.bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            *view,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            # --dev is a writable tmpfs (and /dev/shm in it): memory outside every limit.
            "--remount-ro",
            "/dev",
            "--bind",
            str(scratch),
            SCRATCH_DIR,
            "--remount-ro",
            "/",
            "--chdir",
            SCRATCH_DIR,
            *env,
            "--",
            *argv,
        ]

    async def _run_in(self, work: Path, scratch: Path, call: _Call) -> _Finished:
        command = self.command(scratch, call.argv, call.memory_mb)
        memory_mb = call.memory_mb + self.scratch_mb + BWRAP_OVERHEAD_MB
        cgroup = (
            _Cgroup.create(work.name, memory_mb * 1024 * 1024, MAX_PROCESSES + 8)
            if self.use_cgroups
            else "cgroups are turned off for this sandbox"
        )
        if isinstance(cgroup, str):
            return dataclasses.replace(
                await self._supervise(command, call, kill=_Killer()),
                unenforced=(
                    f"memory and processes of the whole sandbox: {cgroup}; each process "
                    f"has its RLIMIT_AS and nobody's processes RLIMIT_NPROC {MAX_PROCESSES}",
                ),
            )
        try:
            return await self._supervise(cgroup.enter(command), call, kill=_Killer())
        finally:
            await cgroup.remove()


class _Cgroup:
    """A cgroup (v1 or v2) of one sandbox, made under our own: caps on all of it at once.

    It caps the memory and the processes of the whole sandbox, bwrap's own included. Our own
    cgroup's limits still apply above it.
    """

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_tasks: int) -> _Cgroup | str:
        """Make it and set its limits; or say why that is not possible here."""
        try:
            places = _own_cgroups()
        except OSError as exc:
            return f"the host's cgroups cannot be read ({exc})"
        made: list[Path] = []
        try:
            if "memory" in places and "pids" in places:  # cgroup v1
                memory, pids = places["memory"] / name, places["pids"] / name
                memory.mkdir()
                made.append(memory)
                pids.mkdir()
                made.append(pids)
                (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
                swap = memory / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(memory_bytes))
                (pids / "pids.max").write_text(str(max_tasks))
            elif "" in places:  # cgroup v2
                group = places[""] / name
                group.mkdir()
                made.append(group)
                (group / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(FileNotFoundError):
                    (group / "memory.swap.max").write_text("0")
                (group / "pids.max").write_text(str(max_tasks))
            else:
                return "the host has no memory and pids cgroup controllers"
        except OSError as exc:
            for path in reversed(made):
                with contextlib.suppress(OSError):
                    path.rmdir()
            return f"no cgroup could be made here ({type(exc).__name__}: {exc.strerror})"
        return cls(made)

    def enter(self, command: list[str]) -> list[str]:
        """``command``, run by a shell that first moves itself into this cgroup.

        If a move fails, the shell exits with an error before anything runs.
        """
        moves = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(self.dirs)))
        script = f'{moves} && shift {len(self.dirs)} && exec "$@"'
        procs = [str(path / "cgroup.procs") for path in self.dirs]
        return ["/bin/sh", "-c", script, "sh", *procs, *command]

    async def remove(self) -> None:
        """Kill what is left in it and remove it."""
        for path in self.dirs:
            for _ in range(100):
                with contextlib.suppress(OSError, ValueError):
                    for pid in (path / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # its last processes are still exiting
                    await asyncio.sleep(0.01)
            else:
                log.warning("cgroup %s could not be removed", path)


def _own_cgroups() -> dict[str, Path]:
    """Where our own cgroup is, per v1 controller (``memory``, ``pids``) and for v2 (``""``)."""
    mounts: dict[str, tuple[Path, str]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        parts, (fstype, _source, options) = fields.split(), rest.split()[:3]
        root, point = parts[3], Path(parts[4])
        if fstype == "cgroup2":
            mounts[""] = (point, root)
        elif fstype == "cgroup":
            for option in options.split(","):
                if option in ("memory", "pids"):
                    mounts[option] = (point, root)
    found: dict[str, Path] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            if controller in mounts:
                point, root = mounts[controller]
                found[controller] = point / os.path.relpath(path, root)
    return found


async def probe(sandbox: _Sandbox) -> str | None:
    """Run a trivial command in ``sandbox``; None if it worked, else what went wrong."""
    try:
        result = await sandbox.run(["/bin/echo", "sandbox-ok"], timeout_s=30, memory_mb=256)
    except OSError as exc:  # the program is missing or cannot be executed
        return f"{type(exc).__name__}: {exc}"
    if result.exit_code == 0 and result.stdout.strip() == "sandbox-ok":
        return None
    detail = (result.stderr.strip() or result.stdout.strip())[-400:]
    if result.timed_out:
        detail = "the probe did not finish in 30 s"
    return f"exit code {result.exit_code}: {detail or 'no output'}"


async def aopen_command_sandbox(
    prefer: SandboxKind = "gvisor",
    *,
    runsc: str = "runsc",
    bwrap: str = "bwrap",
) -> GVisorSandbox | BubblewrapSandbox:
    """Probe the sandboxes once and return the first that runs a trivial command.

    gVisor is tried with a whole-sandbox cgroup, then without one (the host may have no
    writable cgroups; then its ``fallback_reason`` and ``unenforced_limits`` say so), then
    bubblewrap. A fallback's reason is carried by the sandbox and by
    every result it gives, so each run's events say which sandbox ran a command and why.

    Args:
        prefer: ``gvisor`` (the default) or ``bubblewrap`` to skip gVisor.
        runsc: The ``runsc`` program.
        bwrap: The ``bwrap`` program.

    Raises:
        SandboxUnavailable: neither sandbox starts; it names both failures. Nothing runs
            unconfined.
    """
    problems: list[str] = []
    if prefer == "gvisor":
        with_cgroups: str | None = None
        for use_cgroups in (True, False):
            gvisor = GVisorSandbox(runsc=runsc, use_cgroups=use_cgroups)
            problem = await probe(gvisor)
            if problem is None:
                if with_cgroups is not None:  # a weaker gVisor: every result says so
                    gvisor.fallback_reason = f"gVisor runs without a cgroup: {with_cgroups}"
                return gvisor
            log.info("gVisor (cgroups=%s) did not start: %s", use_cgroups, problem)
            with_cgroups = problem
        problems.append(f"gVisor ({runsc}) could not start: {problem}")
    reason = problems[0] if problems else None
    fallback = BubblewrapSandbox(bwrap=bwrap, fallback_reason=reason)
    problem = await probe(fallback)
    if problem is None:
        if reason:
            log.warning("falling back to bubblewrap: %s", reason)
        return fallback
    problems.append(f"bubblewrap ({bwrap}) could not start: {problem}")
    raise SandboxUnavailable(
        "no command sandbox can start, so no command will run: " + "; ".join(problems),
        hint="install Debian's runsc (gVisor) or bubblewrap: apt-get install runsc bubblewrap "
        "(./dev test does); bubblewrap also needs util-linux's prlimit and setpriv, and "
        "user namespaces",
    )


def open_command_sandbox(
    prefer: SandboxKind = "gvisor", *, runsc: str = "runsc", bwrap: str = "bwrap"
) -> GVisorSandbox | BubblewrapSandbox:
    """Blocking twin of :func:`aopen_command_sandbox`, for code outside an event loop."""
    return asyncio.run(aopen_command_sandbox(prefer, runsc=runsc, bwrap=bwrap))


# -- helpers ---------------------------------------------------------------------------------


def _bind(destination: str, source: str, *, writable: bool) -> dict[str, object]:
    options = ["rbind", "rw" if writable else "ro", "nosuid", "nodev"]
    return {"destination": destination, "type": "bind", "source": source, "options": options}


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, bool]:
    """Read to the end; keep the first ``cap`` bytes and say whether more came."""
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if len(chunk) > room:
            truncated = True
        kept += chunk[: max(room, 0)]
    return bytes(kept), truncated


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(data)
        await process.stdin.drain()
    process.stdin.close()


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def _reap(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), _GRACE_S)


async def _succeeds(command: list[str]) -> bool:
    """Run a set-up command; whether it exited 0 (a missing program is a failure)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return False
    return await process.wait() == 0


async def _quiet(command: list[str]) -> None:
    """Run a clean-up command, ignoring its output and a failure (it may have nothing to do)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return
    await _reap(process)


_CRASH_MARKS = ("panic:", "fatal error:", "runtime: ")
_WAIT_FAILED = "Wait RPC to container"


def _runsc_crash(logs: Path) -> str | None:
    """Why the gVisor sandbox died under the command, from runsc's logs; None if it did not.

    ``runsc run`` reports the container's exit; when the sandbox itself dies (a panic, a
    thread it cannot start) the wait fails and runsc exits with the sandbox's own code.
    """
    texts = {}
    for path in sorted(logs.glob("*.txt")):
        with contextlib.suppress(OSError):
            texts[path.name] = path.read_text(encoding="utf-8", errors="replace")
    if not any(_WAIT_FAILED in text for text in texts.values()):
        return None
    for name, text in texts.items():
        if ".boot." not in name:
            continue
        for line in text.splitlines():
            if line.startswith(_CRASH_MARKS):
                return f"the gVisor sandbox crashed: {line.strip()[:300]}"
    return "the gVisor sandbox died before the command exited (runsc lost the container)"


def _list_scratch(scratch: Path) -> tuple[ScratchFile, ...]:
    files: list[ScratchFile] = []
    for path in sorted(scratch.rglob("*")):
        if len(files) >= MAX_SCRATCH_LISTING:
            break
        if path.is_file() and not path.is_symlink():
            files.append(ScratchFile(str(path.relative_to(scratch)), path.stat().st_size))
    return tuple(files)
