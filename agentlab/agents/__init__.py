"""Agents: the three LangGraph configurations of the article's benchmark, and their runner.

* ``chat_rag`` -- retrieval and an answer, no tools;
* ``single`` -- one model plans and calls tools in a loop;
* ``multi`` -- planner, executor and verifier kept apart.
"""

from agentlab.agents.context import AgentContext, StopConditions
from agentlab.agents.runner import CONFIGS, Agent, AgentRun, Config, build_graph

__all__ = [
    "CONFIGS",
    "Agent",
    "AgentContext",
    "AgentRun",
    "Config",
    "StopConditions",
    "build_graph",
]
