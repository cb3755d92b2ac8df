from __future__ import annotations

from collections.abc import Callable

import pytest

from agentlab.core.ids import RunId
from agentlab.store import EventStore, MemoryEventStore, MemoryLog
from tests.contracts.event_store import EventStoreContract, OpenStore, WriteRaw


class TestMemoryStore(EventStoreContract):
    @pytest.fixture
    def log(self) -> MemoryLog:
        return MemoryLog()

    @pytest.fixture
    def open_store(self, log: MemoryLog) -> OpenStore:
        def open_() -> EventStore:
            return MemoryEventStore(log)

        return open_

    @pytest.fixture
    def write_raw(self, log: MemoryLog) -> WriteRaw:
        def write(run_id: str, seq: int, kind: str, body: str) -> None:
            log.rows.setdefault(RunId(run_id), []).append((kind, body))

        return write

    @pytest.fixture
    def set_schema_version(self, log: MemoryLog) -> Callable[[int], None]:
        def set_version(version: int) -> None:
            log.schema_version = version

        return set_version
