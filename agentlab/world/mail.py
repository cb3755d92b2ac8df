"""Mail: a system that delivers to the domains it knows and bounces the rest."""

from __future__ import annotations

import re
from typing import Any

from agentlab.world.errors import WorldError
from agentlab.world.fixture import Mail

ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$")


class MailSystem:
    """An outbox. Policy allowlists are the executor's job; this is a mail server's check."""

    def __init__(self, fixture: Mail) -> None:
        self.known_domains = {d.lower() for d in fixture.known_domains}
        self.outbox: dict[str, dict[str, Any]] = {}

    def check_recipients(self, to: list[str]) -> None:
        """Refuse malformed addresses and unroutable domains (422 naming the recipient)."""
        if not to:
            raise WorldError(422, "to: at least one recipient is needed")
        for index, address in enumerate(to):
            match = ADDRESS.fullmatch(address)
            if match is None:
                raise WorldError(422, f"to.{index}: {address!r} is not an email address")
            if match.group(1).lower() not in self.known_domains:
                raise WorldError(
                    422, f"to.{index}: {address} bounced: domain {match.group(1)} does not exist"
                )

    def send(self, message: dict[str, Any], *, sent_at: str) -> dict[str, Any]:
        """Put a message in the outbox with the next id."""
        message_id = f"MSG-{len(self.outbox) + 1:06d}"
        stored = {"message_id": message_id, **message, "sent_at": sent_at}
        self.outbox[message_id] = stored
        return stored

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The outbox."""
        return {"outbox": list(self.outbox.values())}
