"""The typer application. Each verb lives in its own module and is registered here."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from agentlab._version import __version__
from agentlab.cli import demo, runs
from agentlab.cli._console import err_console
from agentlab.core.errors import AgentlabError

app = typer.Typer(
    name="agentlab",
    help="A lab bench for production LLM agents: run, replay, compare and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(name="demo")(demo.demo)
app.add_typer(runs.app, name="runs")


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
    """Entry point of the ``agentlab`` script: usage errors print cleanly and exit 2."""
    try:
        app()
    except AgentlabError as exc:
        err_console.print(f"[red]error[/red] {exc}", markup=True, highlight=False)
        raise SystemExit(2) from None
