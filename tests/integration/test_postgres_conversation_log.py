from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from agentlab.adapters import open_conversation_log
from tests.contracts.conversation_log import ConversationLogContract, OpenLog


class TestPostgresConversationLog(ConversationLogContract):
    @pytest.fixture
    def open_log(self, pg_url: str) -> OpenLog:
        return lambda key: open_conversation_log(pg_url, key=key)

    @pytest.fixture
    def stored_bytes(self, pg_url: str) -> Callable[[], bytes]:
        def dump() -> bytes:
            with psycopg.connect(pg_url) as conn:
                rows = conn.execute("SELECT * FROM conversation_turns").fetchall()
            return repr(rows).encode() + b"".join(bytes(r[3]) for r in rows)

        return dump
