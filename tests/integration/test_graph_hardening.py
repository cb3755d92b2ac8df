"""Compiling each configuration once must not lose LangGraph's own checkpoint hardening."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

PROBE = """
from langgraph.checkpoint.memory import InMemorySaver
from agentlab.agents.runner import compile_graph
saver = InMemorySaver()
graph = compile_graph("multi", saver)
print("wrapped" if graph.checkpointer is not saver else "bare")
"""


@pytest.mark.parametrize(("strict", "expected"), [("true", "wrapped"), ("false", "bare")])
def test_strict_msgpack_wraps_each_agents_checkpointer(strict: str, expected: str) -> None:
    # LangGraph reads the setting when it is imported, so each case is a process of its own.
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": strict}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected


def test_a_checkpointer_that_is_not_a_saver_is_refused() -> None:
    from agentlab.agents.runner import compile_graph

    with pytest.raises(TypeError, match="Invalid checkpointer"):
        compile_graph("single", object())  # type: ignore[arg-type]
