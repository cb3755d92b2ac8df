"""The typer application. Each verb lives in its own module and is registered here."""

from __future__ import annotations

import logging
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from agentlab._version import __version__
from agentlab.cli import (
    agentdojo,
    approvals,
    audit,
    cluster,
    compare,
    conversations,
    demo,
    experiments,
    nightly,
    policy,
    run,
    runs,
    serve,
    sim,
    tools,
    world,
)
from agentlab.cli._console import err_console
from agentlab.core.errors import AgentlabError


class _ReportingGroup(TyperGroup):
    """Prints an AgentlabError as its message and hint, and exits 2, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AgentlabError as exc:
            err_console.print(f"[red]error[/red] {exc}", markup=True, highlight=False)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="agentlab",
    cls=_ReportingGroup,
    help="A lab bench for production LLM agents: run, replay, compare and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(name="demo")(demo.demo)
app.command(name="run")(run.run)
app.command(name="resume")(run.resume)
app.command(name="compare")(compare.compare)
app.command(name="experiments")(experiments.experiments)
app.command(name="nightly")(nightly.nightly)
app.add_typer(runs.app, name="runs")
app.add_typer(tools.app, name="tools")
app.add_typer(policy.app, name="policy")
app.add_typer(approvals.app, name="approvals")
app.add_typer(world.app, name="world")
app.add_typer(cluster.app, name="cluster")
app.add_typer(sim.app, name="sim")
app.add_typer(audit.app, name="audit")
app.add_typer(conversations.app, name="conversations")
app.add_typer(agentdojo.app, name="agentdojo")
app.command(name="serve")(serve.serve)
app.add_typer(serve.tokens_app, name="tokens")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"agentlab {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug detail to stderr.")
    ] = False,
) -> None:
    """A lab bench for production LLM agents: run, replay, compare and audit."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Entry point of the ``agentlab`` script."""
    app()
