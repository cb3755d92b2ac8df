"""The audit log: the decision points of every run, append-only and hash-chained.

The article's 7.3: "What auditors need is not the full LLM output, but the decision points:
whether approval occurred, selected tool, arguments, target resources, results,
idempotency_key, execution time, and actor." Each of those is an :class:`AuditEntry`. The
log numbers entries from 0 and chains them: a record's ``hash`` covers its content, its seq
and the previous record's hash, so editing, deleting or reordering a record breaks the chain
at that point, and :func:`verify_chain` says where.

The chain alone cannot tell that the *last* record was edited and its hash recomputed, or
that records were cut off the end. Anchor the head (:meth:`AuditLog.head`) somewhere else --
the nightly report prints it -- and compare.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Literal, NamedTuple, Protocol, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from agentlab.core.errors import StoreClosed

AuditDecision = Literal[
    "proposed",
    "invalid",
    "blocked",
    "dry_run",
    "approval_requested",
    "approved",
    "rejected",
    "committed",
    "replayed",
    "failed",
    "retried",
    "fallback",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of record 0."""


class AuditEntry(BaseModel):
    """One decision point, as the executor states it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    at: AwareDatetime
    run_id: str | None
    step_id: str | None
    actor: str
    """Who the run acts for."""
    decision: AuditDecision
    tool: str | None
    arguments: dict[str, JsonValue] | None
    """The call's arguments, with personal-data fields masked by the tool."""
    target_resources: tuple[str, ...] = ()
    """What the call touches: ``mailto:...``, ``erp:supplier/SUP-000123``."""
    approval: str | None = None
    """Who decided: ``policy:<rule>`` or ``human:<reviewer>``."""
    result: JsonValue = None
    idempotency_key: str | None = None
    latency_ms: float | None = None
    reason: str = ""


class AuditRecord(AuditEntry):
    """An entry as the log keeps it: numbered and chained."""

    seq: int = Field(ge=0)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    def entry(self) -> AuditEntry:
        """The entry without its place in the chain."""
        return AuditEntry.model_validate(self.model_dump(exclude={"seq", "prev_hash", "hash"}))


def chain_hash(prev_hash: str, seq: int, entry: AuditEntry) -> str:
    """SHA-256 over the previous hash, the seq and the entry's canonical JSON."""
    content = entry.model_dump(mode="json")
    canonical = json.dumps(
        [prev_hash, seq, content], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain(entry: AuditEntry, *, seq: int, prev_hash: str) -> AuditRecord:
    """The record that puts ``entry`` at ``seq`` after a record whose hash is ``prev_hash``."""
    return AuditRecord(
        **entry.model_dump(),
        seq=seq,
        prev_hash=prev_hash,
        hash=chain_hash(prev_hash, seq, entry),
    )


class ChainCheck(NamedTuple):
    """What :func:`verify_chain` found."""

    is_intact: bool
    checked: int
    """How many records were read."""
    first_bad_seq: int | None
    """Where the chain breaks; None when intact."""
    problem: str
    head_hash: str
    """The hash of the last record read (the genesis hash for an empty log)."""


def verify_chain(records: list[AuditRecord]) -> ChainCheck:
    """Walk the records from seq 0 and report the first place the chain breaks."""
    prev_hash = GENESIS_HASH
    for index, record in enumerate(records):
        if record.seq != index:
            return _broken(
                records,
                index,
                f"expected seq {index}, found {record.seq}: a record is missing or out of order",
            )
        if record.prev_hash != prev_hash:
            return _broken(
                records,
                index,
                "prev_hash does not match the previous record's hash:"
                " the previous record was changed, removed or replaced",
            )
        if chain_hash(prev_hash, record.seq, record.entry()) != record.hash:
            return _broken(
                records, index, "the record's content does not match its hash: it was edited"
            )
        prev_hash = record.hash
    return ChainCheck(True, len(records), None, "", prev_hash)


def _broken(records: list[AuditRecord], index: int, problem: str) -> ChainCheck:
    head = records[-1].hash if records else GENESIS_HASH
    return ChainCheck(False, len(records), index, problem, head)


class AuditLog(Protocol):
    """An append-only, hash-chained log of decision points.

    Every backend passes ``tests/contracts/audit_log.py``.
    """

    url: str

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Number and chain the entry, write it, and return the record."""
        ...

    def read(self, *, after_seq: int = -1, run_id: str | None = None) -> list[AuditRecord]:
        """Records after ``after_seq``, in order; only one run's when ``run_id`` is given."""
        ...

    def head(self) -> tuple[int, str]:
        """The last record's (seq, hash); (-1, genesis hash) for an empty log."""
        ...

    def close(self) -> None:
        """Release the backend; later calls raise ``StoreClosed``."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class MemoryAuditLog:
    """An audit log in process memory, for tests and notebooks.

    Args:
        records: A list to keep the records in; pass the same list to a new log to "reopen"
            one that was closed.
    """

    url = "memory://"

    def __init__(self, records: list[AuditRecord] | None = None) -> None:
        self._records: list[AuditRecord] = records if records is not None else []
        self._lock = threading.Lock()
        self._closed = False

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Number and chain the entry and keep it."""
        with self._lock:
            self._check_open()
            seq, prev_hash = self._head()
            record = chain(entry, seq=seq + 1, prev_hash=prev_hash)
            self._records.append(record)
            return record

    def read(self, *, after_seq: int = -1, run_id: str | None = None) -> list[AuditRecord]:
        """Records after ``after_seq``, optionally of one run."""
        with self._lock:
            self._check_open()
            return [
                r for r in self._records[after_seq + 1 :] if run_id is None or r.run_id == run_id
            ]

    def head(self) -> tuple[int, str]:
        """The last record's (seq, hash)."""
        with self._lock:
            self._check_open()
            return self._head()

    def _head(self) -> tuple[int, str]:
        if not self._records:
            return -1, GENESIS_HASH
        last = self._records[-1]
        return last.seq, last.hash

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("memory:// audit log is closed", hint="open a new one")

    def close(self) -> None:
        """Forget nothing, but refuse further calls."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
