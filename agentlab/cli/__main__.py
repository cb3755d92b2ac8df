"""Run the CLI as ``python -m agentlab.cli``."""

from agentlab.cli.app import main

main()
