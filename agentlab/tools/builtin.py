"""The built-in tools, over the sandbox world's systems (or any API that speaks the same)."""

from __future__ import annotations

from agentlab.tools.browser import BROWSER_TOOLS
from agentlab.tools.erp import check_inventory, create_purchase_order, find_supplier
from agentlab.tools.helpdesk import (
    add_ticket_comment,
    create_ticket,
    search_tickets,
    set_ticket_status,
)
from agentlab.tools.kb import search_kb
from agentlab.tools.mail import send_email
from agentlab.tools.registry import ToolRegistry
from agentlab.tools.rpa import run_rpa_workflow
from agentlab.tools.shell import run_command

BUILTIN_TOOLS = (
    find_supplier,
    check_inventory,
    create_purchase_order,
    send_email,
    search_tickets,
    create_ticket,
    add_ticket_comment,
    set_ticket_status,
    search_kb,
    run_rpa_workflow,
    run_command,
    *BROWSER_TOOLS,
)


def builtin_tools() -> ToolRegistry:
    """A new registry holding every built-in tool."""
    return ToolRegistry(BUILTIN_TOOLS)
