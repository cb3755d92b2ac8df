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

A command that must not go on over a tampered log calls :func:`require_intact_chain`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from agentlab.core.errors import AuditChainBroken, StoreClosed

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
    "injection_detected",
    "dlp_detected",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of record 0."""


class AuditEntry(BaseModel):
    """One decision point, as the executor states it."""

    # Infinity and NaN are not JSON: a database would keep them as null, and the record read
    # back would no longer match its hash.
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False
    )

    at: AwareDatetime
    """When the decision was taken (the executor's clock)."""
    run_id: str | None
    """The run it belongs to; None for a decision outside any run."""
    step_id: str | None
    """The step it belongs to; None for a run-level decision."""
    actor: str
    """Who the run acts for."""
    decision: AuditDecision
    """What happened at this point of the executor's pipeline."""
    tool: str | None
    """The tool the model selected; None when the decision is about no tool."""
    arguments: dict[str, JsonValue] | None
    """The call's arguments, with personal-data fields masked by the tool."""
    target_resources: tuple[str, ...] = ()
    """What the call touches: ``mailto:...``, ``erp:supplier/SUP-000123``."""
    approval: str | None = None
    """Who decided: ``policy:<rule>`` or ``human:<reviewer>``; None when nobody approved."""
    result: JsonValue = None
    """What the system answered (or the error), as JSON."""
    idempotency_key: str | None = None
    """The key the side effect is committed under; a retry with the same key is a no-op."""
    latency_ms: float | None = None
    """How long the call took."""
    reason: str = ""
    """Why, in words: the policy rule's message, the reviewer's note, the error."""


class AuditRecord(AuditEntry):
    """An entry as the log keeps it: numbered and chained."""

    seq: int = Field(ge=0)
    """Position in the log: from 0, without gaps."""
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The previous record's ``hash``; 64 zeros for record 0."""
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """:func:`chain_hash` of ``prev_hash``, ``seq`` and the entry."""

    def entry(self) -> AuditEntry:
        """The entry without its place in the chain."""
        return AuditEntry.model_validate(self.model_dump(exclude={"seq", "prev_hash", "hash"}))


def chain_hash(prev_hash: str, seq: int, entry: AuditEntry) -> str:
    """SHA-256 (hex) over the previous hash, the seq and the entry's canonical JSON.

    Canonical: the JSON array ``[prev_hash, seq, entry]`` with sorted keys, no whitespace,
    UTF-8. Only the entry's fields are hashed (never the record's own ``hash``).
    """
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


def verify_chain(records: Sequence[AuditRecord]) -> ChainCheck:
    """Walk the records from seq 0 and report the first place the chain breaks.

    Found: an edited record (its hash no longer matches: ``first_bad_seq`` is that record),
    a removed or reordered one (a seq out of place), and a forged one whose hash was
    recomputed (the *next* record's ``prev_hash`` no longer matches: ``first_bad_seq`` is the
    record after the forged one).

    Not found: the last record replaced with a recomputed hash, or records cut off the end:
    nothing comes after them to disagree. Compare ``head_hash`` with a copy of the head kept
    elsewhere (:meth:`AuditLog.head`, printed by ``agentlab audit verify``).

    Args:
        records: The whole log, in seq order (``log.read()``).
    """
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


def _broken(records: Sequence[AuditRecord], index: int, problem: str) -> ChainCheck:
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
        """The last record's (seq, hash); (-1, genesis hash) for an empty log.

        Keep it somewhere else: it is what shows that the last record was not replaced.
        """
        ...

    def verify(self) -> ChainCheck:
        """Check the whole chain, as :func:`verify_chain`.

        A stored row that no longer parses as a record (a column set to a value no record can
        have) is reported as the chain broken at its position; it is not raised.
        """
        ...

    def close(self) -> None:
        """Release the backend; later calls raise ``StoreClosed``."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def require_intact_chain(log: AuditLog) -> ChainCheck:
    """Verify ``log`` and return the check, for commands that must not go on over a tampered log.

    Raises:
        AuditChainBroken: a record was edited, removed, reordered or forged.
    """
    check = log.verify()
    if not check.is_intact:
        raise AuditChainBroken(
            f"{log.url}: the audit chain is broken at record {check.first_bad_seq} "
            f"({check.checked} records read): {check.problem}",
            hint="run `agentlab audit verify`; keep the log as evidence and start a new one",
        )
    return check


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

    def verify(self) -> ChainCheck:
        """Check the whole chain."""
        return verify_chain(self.read())

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
