"""``agentlab policy check``: validate a policy file and summarise what it allows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentlab.cli._console import console
from agentlab.core.errors import ConfigError
from agentlab.policy import AutonomyPhase, load_policy, offered_tools
from agentlab.tools import builtin_tools

app = typer.Typer(help="Validate and summarise policy files.", no_args_is_help=True)


@app.command(name="check")
def check(
    path: Annotated[Path, typer.Argument(help="The policy YAML to check.", exists=True)],
) -> None:
    """Validate a policy (file:line errors, exit 2) and print what each actor is offered."""
    policy = load_policy(path)
    tools = builtin_tools()
    named = {name for case in policy.use_cases.values() for name in case.tools}
    named |= {rule.tool for rule in policy.approvals}
    unknown = sorted(named - set(tools.names()))
    if unknown:
        raise ConfigError(
            f"{path}: names tools that do not exist: {', '.join(unknown)}",
            hint="known tools: " + ", ".join(tools.names()),
        )
    console.print(f"{path}: valid; autonomy phase {int(policy.phase)} ({policy.phase.name})")
    table = Table(title="what each actor is offered", title_justify="left")
    for column in ("actor", "use case", "phase", "tools offered", "data classes"):
        table.add_column(column, overflow="fold")
    for actor_name, actor in policy.actors.items():
        for use_case in actor.use_cases:
            phase = AutonomyPhase(policy.phase_of(use_case))
            names = offered_tools(policy, actor=actor_name, use_case=use_case, tools=tools)
            table.add_row(
                actor_name,
                use_case,
                str(int(phase)),
                ", ".join(names) or "(none)",
                ", ".join(actor.data_classes),
            )
    console.print(table)
