"""The mail tool: send email, only to recipients the policy allows."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentlab.tools.context import ToolContext, ToolOutput
from agentlab.tools.registry import tool
from agentlab.tools.spec import WriteArguments

EmailAddress = Annotated[
    str, Field(max_length=254, pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
]


class SendEmail(WriteArguments):
    """Send an email. Recipients must be on the policy's allowlist of domains."""

    to: list[EmailAddress] = Field(min_length=1, max_length=10)
    """1 to 10 recipient addresses."""
    subject: str = Field(min_length=1, max_length=200)
    """The subject line."""
    body: str = Field(min_length=1, max_length=5000)
    """The plain-text body."""


def _recipients(args: SendEmail) -> tuple[str, ...]:
    return tuple(f"mailto:{address}" for address in args.to)


@tool(
    SendEmail,
    side_effect="write",
    scope="mail:send",
    system="email_send",
    masked_fields=("subject", "body"),
    targets=_recipients,
)
async def send_email(args: SendEmail, ctx: ToolContext) -> ToolOutput:
    """Send (or preview) an email."""
    body = await ctx.request(
        "POST",
        "/mail/send",
        json={
            "to": list(args.to),
            "subject": args.subject,
            "body": args.body,
            "dry_run": ctx.is_dry_run,
        },
    )
    return ToolOutput.of_write(body)
