from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentlab.adapters import open_store
from agentlab.core.clock import TickingClock
from agentlab.core.settings import Settings
from agentlab.store import MemoryEventStore


def test_a_ticking_clock_never_repeats_a_time_across_threads() -> None:
    start, tick = datetime(2026, 3, 1, tzinfo=UTC), timedelta(microseconds=1)
    clock = TickingClock(start, tick)
    threads, reads = 4, 500
    seen: list[list[datetime]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def read(index: int) -> None:
        barrier.wait()
        seen[index].extend(clock.now() for _ in range(reads))

    workers = [threading.Thread(target=read, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for times in seen:
        assert all(a < b for a, b in itertools.pairwise(times))
    every = [t for times in seen for t in times]
    assert sorted(every) == [start + tick * i for i in range(threads * reads)]


def test_a_ticking_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TickingClock(datetime(2026, 1, 1))  # naive on purpose


def test_settings_are_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("AGENTLAB_HOME", str(tmp_path / "lab"))
    monkeypatch.setenv("AGENTLAB_STORE_URL", "memory://")
    settings = Settings()
    assert settings.home == tmp_path / "lab"
    assert settings.resolved_store_url() == "memory://"
    store = open_store(settings.resolved_store_url())
    store.close()
    assert isinstance(store, MemoryEventStore)


def test_the_default_store_is_a_duckdb_file_in_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTLAB_HOME", "relative/home")
    url = Settings().resolved_store_url()
    scheme, _, rest = url.partition("://")
    assert scheme == "duckdb"
    assert Path(rest) == tmp_path.resolve() / "relative" / "home" / "runs.duckdb"
    store = open_store(url)
    try:
        assert store.url == url
        assert store.run_ids() == []
    finally:
        store.close()
    assert Path(rest).is_file()
