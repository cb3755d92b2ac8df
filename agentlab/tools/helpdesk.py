"""Helpdesk tools: read tickets, open them, comment on them and change their status."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from agentlab.tools.context import ToolContext, ToolOutput
from agentlab.tools.mail import EmailAddress
from agentlab.tools.registry import tool
from agentlab.tools.spec import ToolArguments, WriteArguments

TicketId = Annotated[str, Field(pattern=r"^TCK-[0-9]{6}$")]
TicketStatus = Literal["open", "pending", "resolved"]


class SearchTickets(ToolArguments):
    """List helpdesk tickets, optionally only those with one status."""

    status: TicketStatus | None
    """Only tickets with this status, or null for all."""


@tool(SearchTickets, side_effect="read", scope="helpdesk:read", system="helpdesk_api")
async def search_tickets(args: SearchTickets, ctx: ToolContext) -> ToolOutput:
    """Read tickets from the helpdesk."""
    params = {"status": args.status} if args.status else None
    return ToolOutput(await ctx.request("GET", "/helpdesk/tickets", params=params))


class CreateTicket(WriteArguments):
    """Open a helpdesk ticket (dry-run supported)."""

    title: str = Field(min_length=3, max_length=120)
    """A one-line summary."""
    body: str = Field(min_length=1, max_length=4000)
    """What happened and what is needed."""
    requester: EmailAddress
    """The email address of the person the ticket is for."""
    priority: Literal["low", "normal", "high", "urgent"]
    """How urgent it is."""


@tool(
    CreateTicket,
    side_effect="write",
    scope="helpdesk:write",
    system="helpdesk_api",
    masked_fields=("body",),
    targets=lambda args: (f"mailto:{args.requester}",),
)
async def create_ticket(args: CreateTicket, ctx: ToolContext) -> ToolOutput:
    """Open (or preview) a ticket."""
    payload = args.model_dump(exclude={"dry_run", "idempotency_key"})
    body = await ctx.request(
        "POST", "/helpdesk/tickets", json={**payload, "dry_run": ctx.is_dry_run}
    )
    return ToolOutput.of_write(body)


class AddTicketComment(WriteArguments):
    """Add a comment to a helpdesk ticket (dry-run supported)."""

    ticket_id: TicketId
    """The ticket: TCK- then six digits."""
    body: str = Field(min_length=1, max_length=4000)
    """The comment."""


@tool(
    AddTicketComment,
    side_effect="write",
    scope="helpdesk:write",
    system="helpdesk_api",
    masked_fields=("body",),
    targets=lambda args: (f"helpdesk:ticket/{args.ticket_id}",),
)
async def add_ticket_comment(args: AddTicketComment, ctx: ToolContext) -> ToolOutput:
    """Comment on (or preview a comment on) a ticket."""
    body = await ctx.request(
        "POST",
        f"/helpdesk/tickets/{args.ticket_id}/comments",
        json={"body": args.body, "dry_run": ctx.is_dry_run},
    )
    return ToolOutput.of_write(body)


class SetTicketStatus(WriteArguments):
    """Change a helpdesk ticket's status, e.g. resolve it (dry-run supported)."""

    ticket_id: TicketId
    """The ticket: TCK- then six digits."""
    status: TicketStatus
    """The new status."""


@tool(
    SetTicketStatus,
    side_effect="write",
    scope="helpdesk:write",
    system="helpdesk_api",
    targets=lambda args: (f"helpdesk:ticket/{args.ticket_id}",),
)
async def set_ticket_status(args: SetTicketStatus, ctx: ToolContext) -> ToolOutput:
    """Change (or preview changing) a ticket's status."""
    body = await ctx.request(
        "POST",
        f"/helpdesk/tickets/{args.ticket_id}/status",
        json={"status": args.status, "dry_run": ctx.is_dry_run},
    )
    return ToolOutput.of_write(body)
