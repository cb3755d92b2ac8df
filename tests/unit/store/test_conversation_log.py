"""The conversation log in memory, its key file, and the DuckDB backend."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from agentlab.adapters import open_conversation_log
from agentlab.core.errors import ConfigError
from agentlab.store import conversation
from agentlab.store.conversation import (
    MemoryConversationLog,
    SealedTurn,
    load_or_create_conversation_key,
)
from tests.contracts.conversation_log import ConversationLogContract, OpenLog


class TestMemoryConversationLog(ConversationLogContract):
    @pytest.fixture
    def sealed(self) -> list[SealedTurn]:
        return []

    @pytest.fixture
    def open_log(self, sealed: list[SealedTurn]) -> OpenLog:
        return lambda key: MemoryConversationLog(key, sealed)

    @pytest.fixture
    def stored_bytes(self, sealed: list[SealedTurn]) -> Callable[[], bytes]:
        return lambda: b"".join(repr(turn).encode() for turn in sealed)


class TestDuckDBConversationLog(ConversationLogContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "conversations.duckdb"

    @pytest.fixture
    def open_log(self, path: Path) -> OpenLog:
        return lambda key: open_conversation_log(f"duckdb://{path}", key=key)

    @pytest.fixture
    def stored_bytes(self, path: Path) -> Callable[[], bytes]:
        return lambda: b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_the_key_file_is_made_once_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    key = load_or_create_conversation_key(tmp_path / "home")
    path = tmp_path / "home" / "conversation.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_conversation_key(tmp_path / "home") == key


def test_a_configured_key_wins_over_the_file(tmp_path: Path) -> None:
    assert load_or_create_conversation_key(tmp_path, "configured-key") == b"configured-key"
    assert not (tmp_path / "conversation.key").exists()


def test_a_key_made_by_another_process_at_the_same_time_is_the_one_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    theirs, ours = Fernet.generate_key(), Fernet.generate_key()

    def race() -> bytes:  # the other process writes its key file just before ours lands
        (home / "conversation.key").write_bytes(theirs)
        return ours

    monkeypatch.setattr(conversation.Fernet, "generate_key", staticmethod(race))
    assert load_or_create_conversation_key(home) == theirs
    assert (home / "conversation.key").read_bytes() == theirs
    assert sorted(p.name for p in home.iterdir()) == ["conversation.key"]  # no staging file


@pytest.mark.parametrize("bad", [b"not-a-fernet-key", b"x" * 44, b""])
def test_a_malformed_key_is_a_config_error_that_does_not_show_it(
    tmp_path: Path, bad: bytes
) -> None:
    for open_log in (
        lambda: MemoryConversationLog(bad),
        lambda: open_conversation_log(f"duckdb://{tmp_path / 'c.duckdb'}", key=bad),
    ):
        with pytest.raises(ConfigError, match="not a Fernet key") as caught:
            open_log()
        if bad:
            assert bad.decode() not in str(caught.value)
