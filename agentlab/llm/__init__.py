"""Models: the ChatModel port, prices and cost, the LLM budget, and the offline simulator."""

from agentlab.llm.protocol import ChatModel, ChatRequest, ChatResponse, Message, ToolCall, Usage
from agentlab.llm.structured import (
    PLAN_FORMAT,
    VERDICT_FORMAT,
    Plan,
    PlannedStep,
    Verdict,
    response_format,
)

__all__ = [
    "PLAN_FORMAT",
    "VERDICT_FORMAT",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "Message",
    "Plan",
    "PlannedStep",
    "ToolCall",
    "Usage",
    "Verdict",
    "response_format",
]
