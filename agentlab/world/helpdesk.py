"""The helpdesk: tickets, their comments and their status."""

from __future__ import annotations

import copy
from typing import Any

from agentlab.world.errors import WorldError
from agentlab.world.fixture import Helpdesk


class HelpdeskSystem:
    """Tickets from the fixture, and those opened since."""

    def __init__(self, fixture: Helpdesk) -> None:
        self.tickets = {t.ticket_id: {**t.model_dump(), "comments": []} for t in fixture.tickets}
        self._next = len(self.tickets) + 1

    def list(self, status: str | None) -> list[dict[str, Any]]:
        """Tickets, optionally of one status."""
        return [t for t in self.tickets.values() if status is None or t["status"] == status]

    def get(self, ticket_id: str) -> dict[str, Any]:
        """One ticket; 404 if unknown."""
        if ticket_id not in self.tickets:
            raise WorldError(404, f"no ticket {ticket_id}")
        return self.tickets[ticket_id]

    def draft(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The ticket a create would open, with the id it would get."""
        return {
            "ticket_id": f"TCK-{self._next:06d}",
            **fields,
            "status": "open",
            "comments": [],
        }

    def open(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Open a ticket with the next id."""
        ticket = self.draft(fields)
        self.tickets[ticket["ticket_id"]] = ticket
        self._next += 1
        return ticket

    def with_comment(self, ticket_id: str, body: str, *, at: str) -> dict[str, Any]:
        """The ticket as it would be with one more comment (not stored)."""
        ticket = copy.deepcopy(self.get(ticket_id))
        ticket["comments"].append({"body": body, "at": at})
        return ticket

    def with_status(self, ticket_id: str, status: str) -> dict[str, Any]:
        """The ticket as it would be with another status (not stored)."""
        ticket = copy.deepcopy(self.get(ticket_id))
        ticket["status"] = status
        return ticket

    def store(self, ticket: dict[str, Any]) -> None:
        """Replace a ticket by its new version."""
        self.tickets[ticket["ticket_id"]] = ticket

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The tickets."""
        return {"tickets": list(self.tickets.values())}
