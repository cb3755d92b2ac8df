"""The ``agentlab`` command: one module per verb, all registered in ``app``."""

from agentlab.cli.app import app, main

__all__ = ["app", "main"]
