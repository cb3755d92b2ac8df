"""The conversation log: text that may hold personal data, kept apart and encrypted.

The article's 7.3: "Conversation logs that may contain PII should be separated (encrypted,
shorter retention)." Prompts, model replies and the tool results a model reads go here,
not into the event store or the audit log. Each turn's role, text and time are encrypted
together with Fernet (AES-128-CBC with HMAC-SHA256); only the run id, the turn number and
the time (so that retention can purge by age) are stored in clear. ``purge`` deletes turns
for good: by age (the retention), or a whole run (a data-subject request).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, Self

from cryptography.fernet import Fernet, InvalidToken
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agentlab.core.errors import ConfigError, ConversationKeyMismatch, StoreClosed

Role = Literal["system", "user", "assistant", "tool"]
KEY_FILE = "conversation.key"


class ConversationTurn(BaseModel):
    """One message of a run's conversation, decrypted."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    run_id: str
    """The run the conversation belongs to."""
    turn_no: int = Field(ge=0)
    """Position in the run's conversation, from 0."""
    role: Role
    """Who spoke: the system prompt, the user, the model, or a tool's result shown to it."""
    text: str
    """What was said; it may hold personal data, so it is stored only encrypted."""
    at: AwareDatetime
    """When; retention deletes by this time."""


class SealedTurn(NamedTuple):
    """A turn as it is stored: only the ciphertext holds what was said."""

    run_id: str
    turn_no: int
    at: datetime
    ciphertext: bytes


class TurnCipher:
    """Seals and opens turns with one Fernet key.

    Args:
        key: A urlsafe-base64 Fernet key (``Fernet.generate_key()``).
        where: The log's URL, for messages.

    Raises:
        ConfigError: ``key`` is not a Fernet key (the message does not show it).
    """

    def __init__(self, key: bytes, *, where: str) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{where}: the conversation key is not a Fernet key "
                "(32 bytes in url-safe base64, 44 characters)",
                hint="set AGENTLAB_CONVERSATION_KEY to the output of "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`, or unset it to use the key file",
            ) from None  # the cause could quote the key
        self._where = where

    def seal(self, run_id: str, turn_no: int, role: Role, text: str, at: datetime) -> SealedTurn:
        """Encrypt a turn's role, text and time together."""
        plain = json.dumps({"role": role, "text": text, "at": at.isoformat()}).encode()
        return SealedTurn(run_id, turn_no, at, self._fernet.encrypt(plain))

    def open(self, run_id: str, turn_no: int, ciphertext: bytes) -> ConversationTurn:
        """Decrypt a stored turn.

        Raises:
            ConversationKeyMismatch: the turn was sealed with another key.
        """
        try:
            plain = json.loads(self._fernet.decrypt(ciphertext))
        except InvalidToken:
            raise ConversationKeyMismatch(
                f"{self._where}: turn {turn_no} of run {run_id} was encrypted with another key",
                hint="set AGENTLAB_CONVERSATION_KEY (or <home>/conversation.key) to the key "
                "the log was written with",
            ) from None
        return ConversationTurn(run_id=run_id, turn_no=turn_no, **plain)


def load_or_create_conversation_key(home: Path, configured: str | None = None) -> bytes:
    """The conversation log's key: the configured one, else ``<home>/conversation.key``.

    A new key file is created with mode 0600 on first use. Keep it out of version control and
    back it up: without it the log cannot be read.

    Args:
        home: The agentlab home (``AGENTLAB_HOME``).
        configured: The ``conversation_key`` setting, if set; it wins over the file.
    """
    if configured:
        return configured.encode()
    path = home / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Written in full under a private name, then linked into place: of two processes making
    # the key at once, one wins and the other reads the winner's key, never a partial file.
    staging = path.with_name(f".{KEY_FILE}.{secrets.token_hex(8)}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        os.link(staging, path)
    except FileExistsError:
        return path.read_bytes().strip()
    finally:
        staging.unlink()
    return key


class ConversationLog(Protocol):
    """Encrypted conversation text per run, with purge for retention and erasure."""

    url: str

    def append(self, run_id: str, role: Role, text: str, *, at: datetime) -> ConversationTurn:
        """Encrypt and keep one turn; turns of a run are numbered from 0."""
        ...

    def read(self, run_id: str) -> list[ConversationTurn]:
        """A run's turns, decrypted, in order."""
        ...

    def purge(self, *, older_than: datetime | None = None, run_id: str | None = None) -> int:
        """Delete turns before ``older_than``, or all of ``run_id``'s; returns how many."""
        ...

    def close(self) -> None:
        """Release the backend; later calls raise ``StoreClosed``."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class MemoryConversationLog:
    """A conversation log in process memory; it too holds only ciphertext.

    Args:
        key: The Fernet key.
        sealed: A list to keep the sealed turns in (share it to "reopen" a log).
    """

    url = "memory://"

    def __init__(self, key: bytes, sealed: list[SealedTurn] | None = None) -> None:
        self._cipher = TurnCipher(key, where=self.url)
        self.sealed: list[SealedTurn] = sealed if sealed is not None else []
        self._lock = threading.Lock()
        self._closed = False

    def append(self, run_id: str, role: Role, text: str, *, at: datetime) -> ConversationTurn:
        """Encrypt and keep one turn."""
        with self._lock:
            self._check_open()
            turn_no = sum(1 for s in self.sealed if s.run_id == run_id)
            self.sealed.append(self._cipher.seal(run_id, turn_no, role, text, at))
        return ConversationTurn(run_id=run_id, turn_no=turn_no, role=role, text=text, at=at)

    def read(self, run_id: str) -> list[ConversationTurn]:
        """A run's turns, decrypted."""
        with self._lock:
            self._check_open()
            return [
                self._cipher.open(s.run_id, s.turn_no, s.ciphertext)
                for s in self.sealed
                if s.run_id == run_id
            ]

    def purge(self, *, older_than: datetime | None = None, run_id: str | None = None) -> int:
        """Delete turns by age or by run."""
        with self._lock:
            self._check_open()
            kept = [s for s in self.sealed if not _purged(s, older_than, run_id)]
            removed = len(self.sealed) - len(kept)
            self.sealed[:] = kept
            return removed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("memory:// conversation log is closed", hint="open a new one")

    def close(self) -> None:
        """Refuse further calls."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _purged(sealed: SealedTurn, older_than: datetime | None, run_id: str | None) -> bool:
    if older_than is None and run_id is None:
        return False
    by_age = older_than is None or sealed.at < older_than
    by_run = run_id is None or sealed.run_id == run_id
    return by_age and by_run
