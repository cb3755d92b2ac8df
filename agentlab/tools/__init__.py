"""Typed tools: one pydantic model per tool gives its schema, validation and description."""

from agentlab.tools.browser import (
    BROWSER_TOOLS,
    BlockedRequest,
    Browser,
    BrowserSession,
    PageElement,
    PageView,
    screenshot_evidence,
)
from agentlab.tools.builtin import BUILTIN_TOOLS, builtin_tools
from agentlab.tools.context import Evidence, ToolContext, ToolOutput
from agentlab.tools.errors import ActionBlocked, ActionFailed, InvalidArguments, ToolUnavailable
from agentlab.tools.registry import ToolRegistry, tool
from agentlab.tools.shell import CommandResult, CommandSandbox
from agentlab.tools.spec import EXECUTOR_FIELDS, ToolArguments, ToolSpec, WriteArguments

__all__ = [
    "BROWSER_TOOLS",
    "BUILTIN_TOOLS",
    "EXECUTOR_FIELDS",
    "ActionBlocked",
    "ActionFailed",
    "BlockedRequest",
    "Browser",
    "BrowserSession",
    "CommandResult",
    "CommandSandbox",
    "Evidence",
    "InvalidArguments",
    "PageElement",
    "PageView",
    "ToolArguments",
    "ToolContext",
    "ToolOutput",
    "ToolRegistry",
    "ToolSpec",
    "ToolUnavailable",
    "WriteArguments",
    "builtin_tools",
    "screenshot_evidence",
    "tool",
]
