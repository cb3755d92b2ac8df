"""The World: the sandbox systems' state, the writes' idempotency, faults and statistics.

Every write goes through :meth:`World.write`: a dry-run computes the answer and changes
nothing; a commit with a new ``Idempotency-Key`` applies it and remembers the answer; the
same key with the same request gets the remembered answer back (``replayed: true``), the
same key with another request is a 409. That is what real payment and ERP APIs do, and what
lets an agent's resumed step commit exactly once even when the first answer was lost.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agentlab.core.clock import Clock, SystemClock
from agentlab.world.erp import ErpSystem
from agentlab.world.errors import WorldError
from agentlab.world.fixture import (
    WorldFixture,
    default_world_fixture,
    kb_extra_folder_of,
    kb_folder_of,
)
from agentlab.world.helpdesk import HelpdeskSystem
from agentlab.world.kb import KnowledgeBase, load_articles
from agentlab.world.mail import MailSystem
from agentlab.world.rpa import RpaRunner

KEY = re.compile(r"[A-Za-z0-9_.:-]{16,64}")
SYSTEMS = ("erp", "mail", "helpdesk", "kb", "rpa")

ID_FIELDS = {
    "suppliers": "supplier_id",
    "inventory": "sku",
    "purchase_orders": "po_id",
    "invoices": "invoice_no",
    "outbox": "message_id",
    "tickets": "ticket_id",
    "runs": "rpa_run_id",
    "articles": "doc_id",
}


@dataclass
class Fault:
    """The next ``times`` requests matching method and path get ``status`` before handling."""

    method: str
    path: str
    status: int
    times: int
    retry_after_s: float | None = None

    def matches(self, method: str, path: str) -> bool:
        """True if a request with this method and path must get the fault now."""
        return self.times > 0 and self.method.upper() == method.upper() and self.path == path


@dataclass(frozen=True)
class _Remembered:
    fingerprint: str
    answer: dict[str, Any]


class World:
    """The sandbox systems, seeded from a fixture; deterministic and resettable.

    Args:
        fixture: The starting state; the embedded default if None.
        fixture_path: Where the fixture came from, to find a relative ``kb_folder``.
        clock: Stamps created records, and tells whether a portal token has expired.
        portal_key: The key the supplier portal checks sign-in tokens with; the credential
            vault signs them with the same key. None: a random key, so no token works until
            the vault is given ``world.portal_key``.
        api_keys: The keys the JSON APIs check tokens with, by credential (``erp_api``,
            ``mail_api``, ...: ``agentlab.security.open_api_vault`` makes a set). With them,
            a request to ``/<system>/...`` needs a valid, unexpired token of
            ``<system>_api`` carrying ``<system>:read`` (or ``:write`` for a change); a
            system without a key takes requests without tokens. None: no system checks.
    """

    def __init__(
        self,
        fixture: WorldFixture | None = None,
        *,
        fixture_path: Path | None = None,
        clock: Clock | None = None,
        portal_key: bytes | None = None,
        api_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        self.fixture = fixture or default_world_fixture()
        self.portal_key = portal_key if portal_key is not None else secrets.token_bytes(32)
        self.api_keys: dict[str, bytes] = dict(api_keys or {})
        self._clock = clock or SystemClock()
        self._articles = load_articles(kb_folder_of(self.fixture, fixture_path))
        extra = kb_extra_folder_of(self.fixture, fixture_path)
        if extra is not None:
            self._articles += load_articles(extra)
        self.lock = threading.RLock()
        # Requests in flight during a reset still leave afterwards: the count is not reset.
        self.in_flight = dict.fromkeys(SYSTEMS, 0)
        self.reset()
        self._baseline = self.snapshot()

    def reset(self) -> None:
        """Back to the fixture: ids restart; keys, faults, latency and stats are reset."""
        with self.lock:
            self.erp = ErpSystem(self.fixture.erp)
            self.mail = MailSystem(self.fixture.mail)
            self.helpdesk = HelpdeskSystem(self.fixture.helpdesk)
            self.kb = KnowledgeBase(self._articles)
            self.rpa = RpaRunner(self.fixture.rpa, seed=self.fixture.seed)
            self.latency_ms = self.fixture.latency_ms.model_dump()
            self.web_layout: int = self.fixture.web.layout_version
            self.faults: list[Fault] = []
            self._keys: dict[str, _Remembered] = {}
            self.requests = 0
            self.side_effects = 0
            self.in_flight_max = dict(self.in_flight)

    def now_datetime(self) -> datetime:
        """The clock's time."""
        return self._clock.now()

    def now(self) -> str:
        """The clock's time, as records carry it."""
        return self._clock.now().isoformat()

    # -- writes ------------------------------------------------------------------------------

    def write(
        self,
        *,
        key: str | None,
        path: str,
        body: dict[str, Any],
        dry_run: bool,
        preview: Callable[[], dict[str, Any]],
        apply: Callable[[], dict[str, Any]],
    ) -> tuple[int, dict[str, Any]]:
        """Run one write under its idempotency key; returns (HTTP status, answer).

        A refusal (``WorldError`` from ``preview`` or ``apply``) leaves the key unused, so the
        corrected request may use it.

        Args:
            key: The ``Idempotency-Key`` header.
            path: The request's path; with ``body`` it identifies the request.
            body: The request's body without ``dry_run``.
            dry_run: Preview only: nothing changes and the key is not used.
            preview: Computes the answer and the diff without changing anything.
            apply: Makes the change and returns the answer with its diff.

        Raises:
            WorldError: 400 for a missing or malformed key, 409 for a key used for another
                request, or whatever ``preview`` or ``apply`` refuse.
        """
        key = _check_key(key)
        with self.lock:
            if dry_run:
                return 200, {**preview(), "dry_run": True, "replayed": False}
            fingerprint = _fingerprint({"path": path, "body": body})
            remembered = self._keys.get(key)
            if remembered is not None:
                if remembered.fingerprint != fingerprint:
                    raise WorldError(
                        409,
                        f"Idempotency-Key {key} was used for another request; "
                        "a new change needs a new key",
                    )
                return 200, {**copy.deepcopy(remembered.answer), "replayed": True}
            answer = {**apply(), "dry_run": False, "replayed": False}
            self._keys[key] = _Remembered(fingerprint, copy.deepcopy(answer))
            self.side_effects += 1
            return 201, answer

    # -- faults, latency and statistics --------------------------------------------------------

    def add_fault(self, fault: Fault) -> int:
        """Arm a fault; returns how many faults are armed."""
        with self.lock:
            self.faults.append(fault)
            return len(self.faults)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The fault this request must get, if one is armed for it (and count it down)."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
            return None

    def set_latency(self, latency_ms: dict[str, int]) -> dict[str, int]:
        """Change the simulated service time of some systems; returns all of them.

        Raises:
            WorldError: 422 for an unknown system or a negative time.
        """
        unknown = sorted(set(latency_ms) - set(SYSTEMS))
        if unknown:
            raise WorldError(422, f"latency: unknown systems {unknown}; known: {list(SYSTEMS)}")
        negative = sorted(name for name, ms in latency_ms.items() if ms < 0)
        if negative:
            raise WorldError(422, f"latency: {negative} must be 0 ms or more")
        with self.lock:
            self.latency_ms.update(latency_ms)
            return dict(self.latency_ms)

    def enter(self, system: str) -> None:
        """Count a request entering a system."""
        with self.lock:
            self.requests += 1
            self.in_flight[system] += 1
            self.in_flight_max[system] = max(self.in_flight_max[system], self.in_flight[system])

    def leave(self, system: str) -> None:
        """Count a request leaving a system."""
        with self.lock:
            self.in_flight[system] -= 1

    def stats(self) -> dict[str, Any]:
        """Requests served, side effects made, and the most requests in flight per system."""
        with self.lock:
            return {
                "requests": self.requests,
                "side_effects": self.side_effects,
                "in_flight_max": dict(self.in_flight_max),
            }

    # -- state for graders ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The whole state, system by system and collection by collection."""
        with self.lock:
            return copy.deepcopy(
                {
                    "erp": self.erp.snapshot(),
                    "mail": self.mail.snapshot(),
                    "helpdesk": self.helpdesk.snapshot(),
                    "kb": self.kb.snapshot(),
                    "rpa": self.rpa.snapshot(),
                }
            )

    def diff(self) -> dict[str, dict[str, list[Any]]]:
        """What changed since the fixture, collection by collection.

        Shaped ``{"erp.purchase_orders": {"added": [...], "removed": [...], "changed":
        [{"id", "before", "after"}]}}``; unchanged collections are left out, so an untouched
        world diffs to ``{}``.
        """
        return diff_snapshots(self._baseline, self.snapshot())


def diff_snapshots(
    before: dict[str, dict[str, list[dict[str, Any]]]],
    after: dict[str, dict[str, list[dict[str, Any]]]],
) -> dict[str, dict[str, list[Any]]]:
    """Record-by-record differences between two snapshots, keyed ``system.collection``."""
    changes: dict[str, dict[str, list[Any]]] = {}
    for system, collections in after.items():
        for name, records in collections.items():
            id_field = ID_FIELDS[name]
            old = {r[id_field]: r for r in before.get(system, {}).get(name, [])}
            new = {r[id_field]: r for r in records}
            entry = {
                "added": [new[i] for i in new if i not in old],
                "removed": [old[i] for i in old if i not in new],
                "changed": [
                    {"id": i, "before": old[i], "after": new[i]}
                    for i in new
                    if i in old and old[i] != new[i]
                ],
            }
            if any(entry.values()):
                changes[f"{system}.{name}"] = entry
    return changes


def _check_key(key: str | None) -> str:
    if key is None:
        raise WorldError(400, "Idempotency-Key: a write needs this header (16-64 characters)")
    if KEY.fullmatch(key) is None:
        raise WorldError(400, "Idempotency-Key: 16-64 characters of A-Z a-z 0-9 _ . : -")
    return key


def _fingerprint(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
