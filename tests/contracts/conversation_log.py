"""The contract every ConversationLog backend passes (memory, DuckDB, PostgreSQL).

Subclass with an ``open_log`` fixture: ``open_log(key)`` opens the backend's one log with
that key (the same log every call), and a ``stored_bytes`` fixture: everything the backend
keeps, as bytes, to show that no plaintext is among it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from agentlab.core.errors import ConversationKeyMismatch
from agentlab.store.conversation import ConversationLog

OpenLog = Callable[[bytes], ConversationLog]
KEY = Fernet.generate_key()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PII = "Taro Yamada, phone 090-1234-5678, lives in Setagaya"


class ConversationLogContract:
    """Every backend passes every test here."""

    def test_turns_come_back_decrypted_and_numbered_per_run(self, open_log: OpenLog) -> None:
        with open_log(KEY) as log:
            log.append("run_a", "user", PII, at=T0)
            log.append("run_b", "user", "other run", at=T0)
            log.append("run_a", "assistant", "Noted.", at=T0 + timedelta(seconds=1))
            turns = log.read("run_a")
        assert [(t.turn_no, t.role, t.text) for t in turns] == [
            (0, "user", PII),
            (1, "assistant", "Noted."),
        ]
        assert turns[1].at == T0 + timedelta(seconds=1)

    def test_no_plaintext_is_stored(
        self, open_log: OpenLog, stored_bytes: Callable[[], bytes]
    ) -> None:
        with open_log(KEY) as log:
            log.append("run_a", "user", PII, at=T0)
        stored = stored_bytes()
        assert stored  # the backend did keep something ...
        assert b"090-1234-5678" not in stored  # ... and not the personal data
        assert b"Setagaya" not in stored

    def test_another_key_cannot_read_and_says_so_without_the_key(self, open_log: OpenLog) -> None:
        with open_log(KEY) as log:
            log.append("run_a", "user", PII, at=T0)
        other = Fernet.generate_key()
        with open_log(other) as log, pytest.raises(ConversationKeyMismatch) as caught:
            log.read("run_a")
        message = str(caught.value)
        assert "turn 0 of run run_a" in message
        assert KEY.decode() not in message
        assert other.decode() not in message

    def test_purge_by_age_keeps_what_is_within_retention(self, open_log: OpenLog) -> None:
        with open_log(KEY) as log:
            for day in range(5):
                log.append("run_a", "user", f"day {day}", at=T0 + timedelta(days=day))
            removed = log.purge(older_than=T0 + timedelta(days=3))
            assert removed == 3
            assert [t.text for t in log.read("run_a")] == ["day 3", "day 4"]

    def test_purge_of_a_run_erases_only_that_run(self, open_log: OpenLog) -> None:
        with open_log(KEY) as log:
            log.append("run_a", "user", PII, at=T0)
            log.append("run_a", "assistant", "ok", at=T0)
            log.append("run_b", "user", "keep me", at=T0)
            assert log.purge(run_id="run_a") == 2
            assert log.read("run_a") == []
            assert [t.text for t in log.read("run_b")] == ["keep me"]
            assert log.purge() == 0  # no criterion: nothing is deleted

    def test_a_reopened_log_continues_the_numbering(self, open_log: OpenLog) -> None:
        with open_log(KEY) as log:
            log.append("run_a", "user", "first", at=T0)
        with open_log(KEY) as log:
            second = log.append("run_a", "assistant", "second", at=T0)
            assert second.turn_no == 1
            assert [t.text for t in log.read("run_a")] == ["first", "second"]
