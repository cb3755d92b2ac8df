"""What each sandbox is asked to enforce, read from its generated command and OCI bundle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentlab.adapters.command_sandbox import (
    MAX_FILE_BYTES,
    MAX_PROCESSES,
    MAX_SANDBOX_TASKS,
    SANDBOX_OVERHEAD_MB,
    SCRATCH_MB,
    BubblewrapSandbox,
    GVisorSandbox,
)


def bundle(tmp_path: Path, **options: Any) -> dict[str, Any]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return GVisorSandbox(**options).bundle(tmp_path, scratch, ["ls"], 256)  # type: ignore[return-value]


def test_gvisor_root_is_read_only_and_only_scratch_is_mounted_writable(tmp_path: Path) -> None:
    config = bundle(tmp_path)
    assert config["root"] == {"path": str(tmp_path / "rootfs"), "readonly": True}
    writable = [
        m["destination"] for m in config["mounts"] if m["type"] == "bind" and "rw" in m["options"]
    ]
    assert writable == ["/scratch"]
    binds = {m["destination"]: m for m in config["mounts"] if m["type"] == "bind"}
    assert binds["/scratch"]["source"] == str(tmp_path / "scratch")
    assert "ro" in binds["/tmp"]["options"]  # else gVisor mounts a writable tmpfs there
    assert "/work" not in binds
    assert "/root" not in binds
    # The root holds mount points and links only; the host's root is never bound.
    assert {p.name for p in (tmp_path / "rootfs").iterdir()} >= {"etc", "scratch", "usr"}
    assert "/" not in binds


def test_gvisor_runs_as_nobody_in_a_fresh_network_namespace_with_limits(tmp_path: Path) -> None:
    config = bundle(tmp_path)
    process = config["process"]
    assert process["user"] == {"uid": 65534, "gid": 65534}
    assert process["cwd"] == "/scratch"
    assert process["noNewPrivileges"] is True
    assert not any(process["capabilities"].values())
    assert not [
        e for e in process["env"] if e.split("=")[0] not in {"PATH", "HOME", "TMPDIR", "LANG"}
    ]
    limits = {r["type"]: r["hard"] for r in process["rlimits"]}
    assert limits == {
        "RLIMIT_AS": 256 * 1024 * 1024,
        "RLIMIT_FSIZE": MAX_FILE_BYTES,
        "RLIMIT_NPROC": MAX_PROCESSES,
    }
    assert {"type": "network"} in config["linux"]["namespaces"]
    memory = config["linux"]["resources"]["memory"]["limit"]
    assert memory == (256 + SCRATCH_MB + SANDBOX_OVERHEAD_MB) * 1024 * 1024
    # gVisor's own threads count in the pids cgroup: far more room than the command's cap.
    assert config["linux"]["resources"]["pids"]["limit"] == MAX_SANDBOX_TASKS
    assert config["linux"]["cgroupsPath"] == tmp_path.name  # relative: under our own cgroup


def test_gvisor_without_cgroups_asks_runsc_to_ignore_them(tmp_path: Path) -> None:
    assert "resources" not in bundle(tmp_path, use_cgroups=False)["linux"]
    with_cgroups = GVisorSandbox().command(tmp_path, "c1")
    without = GVisorSandbox(use_cgroups=False).command(tmp_path, "c1")
    assert "--ignore-cgroups" not in with_cgroups
    assert "--ignore-cgroups" in without
    for command in (with_cgroups, without):
        assert "--network=none" in command
        assert "--overlay2=none" in command  # writes fail rather than land in memory
        assert command[-3:] == ["run", f"--bundle={tmp_path}", "c1"]


def test_bubblewrap_unshares_everything_and_binds_only_scratch_writable(tmp_path: Path) -> None:
    command = BubblewrapSandbox().command(tmp_path, ["echo", "hi"], 128)
    assert command[:5] == [
        "prlimit",
        f"--as={128 * 1024 * 1024}",
        f"--fsize={MAX_FILE_BYTES}",
        f"--nproc={MAX_PROCESSES}",  # per real uid: all of nobody's sandboxes together
        "--",
    ]
    bwrap = command[command.index("bwrap") :]
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in bwrap
    assert "--share-net" not in bwrap
    assert [bwrap[i + 1 : i + 3] for i, arg in enumerate(bwrap) if arg == "--bind"] == [
        [str(tmp_path), "/scratch"]
    ]
    remounted = [bwrap[i + 1] for i, arg in enumerate(bwrap) if arg == "--remount-ro"]
    assert remounted == ["/dev", "/"]
    assert bwrap[-3:] == ["--", "echo", "hi"]
    if os.geteuid() == 0:
        assert command[5:7] == ["setpriv", "--reuid=65534"]
