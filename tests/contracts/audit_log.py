"""The contract every AuditLog backend passes (memory, DuckDB, PostgreSQL).

Subclass with an ``open_log`` fixture: a callable that opens the backend's log, the same
log each time it is called (so a test can close it and open it again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from agentlab.core.clock import TickingClock
from agentlab.core.errors import StoreClosed
from agentlab.store.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    require_intact_chain,
    verify_chain,
)

OpenLog = Callable[[], AuditLog]


def entry(
    n: int, clock: TickingClock, *, run_id: str = "run_1", actor: str = "alice"
) -> AuditEntry:
    return AuditEntry(
        at=clock.now(),
        run_id=run_id,
        step_id=f"step_{n}",
        actor=actor,
        decision="committed" if n % 2 else "approved",
        tool="create_purchase_order",
        arguments={"supplier_id": "SUP-000103", "items": [{"sku": "TONER-BK-05", "qty": n + 1}]},
        target_resources=("erp:supplier/SUP-000103",),
        approval="policy:po_up_to_5000_usd",
        result={"po_id": f"PO-{n:06d}", "total_usd": 62.5 * (n + 1)},
        idempotency_key=f"idk_{n:028d}",
        latency_ms=12.5 + n,
        reason="日本語も保存される",
    )


class AuditLogContract:
    """Every backend passes every test here."""

    def test_records_come_back_as_appended_numbered_and_chained(self, open_log: OpenLog) -> None:
        clock = TickingClock()
        with open_log() as log:
            written = [log.append(entry(n, clock)) for n in range(4)]
            read = log.read()
            assert read == written
            assert [r.seq for r in read] == [0, 1, 2, 3]
            assert read[0].prev_hash == GENESIS_HASH
            assert verify_chain(read).is_intact
            assert log.head() == (3, read[-1].hash)

    def test_an_empty_log_has_the_genesis_head(self, open_log: OpenLog) -> None:
        with open_log() as log:
            assert log.head() == (-1, GENESIS_HASH)
            assert log.read() == []
            assert verify_chain(log.read()).is_intact

    def test_reads_filter_by_run_and_position(self, open_log: OpenLog) -> None:
        clock = TickingClock()
        with open_log() as log:
            for n in range(6):
                log.append(entry(n, clock, run_id=f"run_{n % 2}"))
            assert [r.seq for r in log.read(run_id="run_1")] == [1, 3, 5]
            assert [r.seq for r in log.read(after_seq=3)] == [4, 5]
            assert [r.seq for r in log.read(after_seq=1, run_id="run_0")] == [2, 4]

    def test_concurrent_appends_keep_the_chain_gapless(self, open_log: OpenLog) -> None:
        clock = TickingClock()
        with open_log() as log:

            def write(worker: int) -> None:
                for n in range(25):
                    log.append(entry(n, clock, actor=f"worker-{worker}"))

            threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            check = verify_chain(log.read())
            assert (check.is_intact, check.checked) == (True, 200)

    def test_a_reopened_log_continues_the_chain(self, open_log: OpenLog) -> None:
        clock = TickingClock()
        log = open_log()
        first = log.append(entry(0, clock))
        log.close()
        with open_log() as again:
            second = again.append(entry(1, clock))
            assert (second.seq, second.prev_hash) == (1, first.hash)
            assert verify_chain(again.read()).is_intact

    def test_awkward_values_come_back_unchanged_and_still_hash_the_same(
        self, open_log: OpenLog
    ) -> None:
        # JSONB, for one, rewrites 1e16 as an integer and -0.0 as 0.0: a record read back
        # that way would no longer match its hash, and an untouched log would look tampered.
        values: list[object] = [
            1e16,
            -0.0,
            12.0,
            1.5e-7,
            2**70,
            "nul\x00byte",
            "line\u2028separator",
            "絵文字 😀",
            {"nested": [1, 2.5, None, True, {"z": 0.1, "a": -3}]},
        ]
        tokyo = timezone(timedelta(hours=9))
        with open_log() as log:
            written = [
                log.append(
                    AuditEntry(
                        at=datetime(2026, 1, 1, 9, 30, 15, 123456, tzinfo=tokyo),
                        run_id="run_1",
                        step_id=None,
                        actor="alice",
                        decision="committed",
                        tool="t",
                        arguments={"value": value},  # type: ignore[dict-item]
                        result=value,  # type: ignore[arg-type]
                        latency_ms=value if isinstance(value, float) else None,
                    )
                )
                for value in values
            ]
            read = log.read()
            assert read == written
            assert [r.result for r in read] == values
            assert verify_chain(read).is_intact
            assert log.verify().is_intact

    def test_verify_agrees_with_the_chain_of_what_is_read(self, open_log: OpenLog) -> None:
        clock = TickingClock()
        with open_log() as log:
            for n in range(3):
                log.append(entry(n, clock))
            check = log.verify()
            assert check == verify_chain(log.read())
            assert (check.is_intact, check.checked, check.head_hash) == (True, 3, log.head()[1])
            assert require_intact_chain(log) == check

    def test_a_closed_log_refuses_calls(self, open_log: OpenLog) -> None:
        log = open_log()
        log.close()
        with pytest.raises(StoreClosed):
            log.append(entry(0, TickingClock()))
        with pytest.raises(StoreClosed):
            log.read()


def documented_sql() -> str:
    """The example query of docs/audit-log.md, which both database backends must run."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "audit-log.md").read_text(encoding="utf-8")
    [sql] = re.findall(r"```sql\n(.*?)```", text, re.DOTALL)
    return sql
