"""``agentlab tools``: the governed tools, their schemas, and what a policy offers whom."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentlab.cli._console import console
from agentlab.core.errors import ConfigError
from agentlab.policy import check_call, default_policy, load_policy
from agentlab.tools import builtin_tools

app = typer.Typer(help="The governed tools and their JSON Schemas.", no_args_is_help=True)

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", envvar="AGENTLAB_POLICY", help="Policy YAML; default: embedded."),
]


@app.command(name="list")
def list_tools(
    policy: PolicyOption = None,
    actor: Annotated[str | None, typer.Option(help="Show what this actor is offered.")] = None,
    use_case: Annotated[str | None, typer.Option(help="The use case for --actor.")] = None,
) -> None:
    """List the tools; with --actor and --use-case, say which the policy offers and why not."""
    rules = load_policy(policy) if policy else default_policy()
    if (actor is None) != (use_case is None):
        raise ConfigError("--actor and --use-case go together", hint="give both, or neither")
    table = Table(title="tools", title_justify="left")
    table.add_column("tool", no_wrap=True)
    for column in ("effect", "scope", "system", "dry-run"):
        table.add_column(column)
    if actor is not None and use_case is not None:
        table.add_column(f"offered to {actor} in {use_case}", overflow="fold")
    for spec in builtin_tools():
        row = [spec.name, spec.side_effect.value, spec.scope, spec.system]
        row.append("yes" if spec.supports_dry_run else "no")
        if actor is not None and use_case is not None:
            verdict = check_call(rules, actor=actor, use_case=use_case, tool=spec)
            offered = "yes" if verdict.is_allowed else f"no: {verdict.reason}"
            if verdict.is_allowed and spec.is_write and not verdict.may_commit:
                offered = "dry-run only"
            row.append(offered)
        table.add_row(*row)
    console.print(table)


@app.command(name="schema")
def show_schema(
    name: Annotated[str, typer.Argument(help="The tool's name, as `agentlab tools list` shows.")],
) -> None:
    """Print a tool as a model is shown it: the OpenAI tools format, with its strict schema."""
    spec = builtin_tools().get(name)
    if spec is None:
        raise ConfigError(f"no tool {name!r}", hint="known: " + ", ".join(builtin_tools().names()))
    typer.echo(json.dumps(spec.openai_tool(), indent=2))
