"""The audit chain: every edit, removal or reordering of a record is found, and where."""

from __future__ import annotations

import itertools
import threading

import pytest
from pydantic import ValidationError

from agentlab.core.clock import TickingClock
from agentlab.core.errors import AuditChainBroken, StoreClosed
from agentlab.store.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    MemoryAuditLog,
    chain,
    chain_hash,
    require_intact_chain,
    verify_chain,
)


def entry(n: int, clock: TickingClock, *, run_id: str = "run_1") -> AuditEntry:
    return AuditEntry(
        at=clock.now(),
        run_id=run_id,
        step_id=f"step_{n}",
        actor="alice",
        decision="committed",
        tool="create_purchase_order",
        arguments={"supplier_id": "SUP-000001", "items": [{"sku": "TONER", "qty": n}]},
        target_resources=("erp:supplier/SUP-000001",),
        approval="policy:po_up_to_5000_usd",
        result={"po_id": f"PO-{n:06d}"},
        idempotency_key=f"idk_{n:028d}",
        latency_ms=12.5,
    )


def logged(count: int) -> list[AuditRecord]:
    log, clock = MemoryAuditLog(), TickingClock()
    for n in range(count):
        log.append(entry(n, clock))
    return log.read()


def test_records_are_numbered_from_0_and_chained() -> None:
    records = logged(5)
    assert [r.seq for r in records] == list(range(5))
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    check = verify_chain(records)
    assert check.is_intact
    assert (check.checked, check.head_hash) == (5, records[-1].hash)


def test_an_edited_field_is_found_at_its_record() -> None:
    records = logged(5)
    edited = records[2].model_copy(update={"approval": "human:mallory"})
    check = verify_chain([*records[:2], edited, *records[3:]])
    assert (check.is_intact, check.first_bad_seq) == (False, 2)
    assert "edited" in check.problem


def test_a_forged_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    records = logged(5)
    forged_entry = records[2].entry().model_copy(update={"result": {"po_id": "PO-999999"}})
    forged = chain(forged_entry, seq=2, prev_hash=records[1].hash)
    check = verify_chain([*records[:2], forged, *records[3:]])
    assert (check.is_intact, check.first_bad_seq) == (False, 3)


def test_a_removed_or_reordered_record_is_found() -> None:
    records = logged(5)
    assert verify_chain([*records[:1], *records[2:]]).first_bad_seq == 1
    assert verify_chain([records[0], records[2], records[1], *records[3:]]).first_bad_seq == 1


def test_reading_one_run_keeps_the_records_of_that_run() -> None:
    log, clock = MemoryAuditLog(), TickingClock()
    for n in range(6):
        log.append(entry(n, clock, run_id=f"run_{n % 2}"))
    assert [r.seq for r in log.read(run_id="run_1")] == [1, 3, 5]
    assert [r.seq for r in log.read(after_seq=3)] == [4, 5]


def test_concurrent_appends_keep_the_chain_intact() -> None:
    log, clock = MemoryAuditLog(), TickingClock()

    def write() -> None:
        for n in range(25):
            log.append(entry(n, clock))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = verify_chain(log.read())
    assert check.is_intact
    assert check.checked == 200
    assert log.head() == (199, log.read()[-1].hash)


def test_a_closed_log_refuses_calls() -> None:
    log = MemoryAuditLog()
    log.close()
    with pytest.raises(StoreClosed):
        log.append(entry(0, TickingClock()))


def test_the_hash_is_sha256_of_the_canonical_json_of_prev_hash_seq_and_entry() -> None:
    import hashlib
    import json

    one = entry(1, TickingClock())
    canonical = json.dumps(
        [GENESIS_HASH, 0, one.model_dump(mode="json")],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    assert chain_hash(GENESIS_HASH, 0, one) == hashlib.sha256(canonical).hexdigest()
    assert chain_hash(GENESIS_HASH, 1, one) != chain_hash(GENESIS_HASH, 0, one)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_numbers_that_json_cannot_hold_are_refused(value: float) -> None:
    # A database would keep them as null, and the record would stop matching its hash.
    fields = entry(0, TickingClock()).model_dump()
    with pytest.raises(ValidationError):
        AuditEntry(**{**fields, "result": {"total": [value]}})
    with pytest.raises(ValidationError):
        AuditEntry(**{**fields, "latency_ms": value})


def test_a_command_that_needs_an_intact_chain_refuses_a_tampered_log() -> None:
    records: list[AuditRecord] = []
    log, clock = MemoryAuditLog(records), TickingClock()
    for n in range(3):
        log.append(entry(n, clock))
    assert require_intact_chain(log).checked == 3
    records[1] = records[1].model_copy(update={"actor": "mallory"})
    with pytest.raises(AuditChainBroken, match="broken at record 1") as caught:
        require_intact_chain(log)
    assert caught.value.code == "AUDIT_CHAIN_BROKEN"
