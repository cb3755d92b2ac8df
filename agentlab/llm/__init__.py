"""Models: the ChatModel port, prices and cost, the LLM budget, and the offline simulator."""

from agentlab.llm.budget import LLMBudget, RateBudget
from agentlab.llm.prices import PriceTable
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
    "LLMBudget",
    "Message",
    "Plan",
    "PlannedStep",
    "PriceTable",
    "RateBudget",
    "ToolCall",
    "Usage",
    "Verdict",
    "response_format",
]
