"""Typed tools: one pydantic model per tool gives its schema, validation and description."""

from agentlab.tools.builtin import BUILTIN_TOOLS, builtin_tools
from agentlab.tools.context import Evidence, ToolContext, ToolOutput
from agentlab.tools.errors import InvalidArguments, ToolUnavailable
from agentlab.tools.registry import ToolRegistry, tool
from agentlab.tools.shell import CommandResult, CommandSandbox
from agentlab.tools.spec import EXECUTOR_FIELDS, ToolArguments, ToolSpec, WriteArguments

__all__ = [
    "BUILTIN_TOOLS",
    "EXECUTOR_FIELDS",
    "CommandResult",
    "CommandSandbox",
    "Evidence",
    "InvalidArguments",
    "ToolArguments",
    "ToolContext",
    "ToolOutput",
    "ToolRegistry",
    "ToolSpec",
    "ToolUnavailable",
    "WriteArguments",
    "builtin_tools",
    "tool",
]
