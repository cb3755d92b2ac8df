"""How a world system refuses a request: an HTTP status and a detail naming the problem."""

from __future__ import annotations


class WorldError(Exception):
    """A refusal by a world system; the app turns it into ``{"detail": ...}`` with a status.

    Args:
        status: 404 for an unknown resource, 409 for a key reused with another request,
            422 for a business rule (unknown supplier, bounced recipient, ...).
        detail: What is wrong, naming the field and value.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
