from __future__ import annotations

import pytest

from agentlab.store.audit import AuditRecord, MemoryAuditLog
from tests.contracts.audit_log import AuditLogContract, OpenLog


class TestMemoryAuditLog(AuditLogContract):
    @pytest.fixture
    def open_log(self) -> OpenLog:
        records: list[AuditRecord] = []
        return lambda: MemoryAuditLog(records)
