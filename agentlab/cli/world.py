"""``agentlab world``: serve the sandbox world, and read its state from a running one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from agentlab.cli._console import err_console
from agentlab.core.errors import BackendError
from agentlab.world import World, build_world_app, load_world_fixture
from agentlab.world.tenants import WorldTenants

app = typer.Typer(help="The sandbox world: ERP, mail, helpdesk, KB, RPA.", no_args_is_help=True)

UrlOption = Annotated[
    str, typer.Option("--url", envvar="AGENTLAB_WORLD_URL", help="A running world's base URL.")
]


@app.command(name="serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8765,
    fixture: Annotated[
        Path | None, typer.Option(help="World fixture YAML; default: the embedded one.")
    ] = None,
    tenants: Annotated[
        bool,
        typer.Option(
            "--tenants",
            help="A world per tenant under /t/<tenant>/ (a cluster's live runs, "
            "docs/scale-out.md); GET /_tenants gives the load across them.",
        ),
    ] = False,
    latency_scale: Annotated[
        float,
        typer.Option(min=0.0, help="With --tenants: the share of modelled latency really waited."),
    ] = 1.0,
) -> None:
    """Serve the world over HTTP until interrupted (Ctrl-C)."""
    import uvicorn  # noqa: PLC0415 - only this command needs a server

    loaded = load_world_fixture(fixture) if fixture else None
    if latency_scale != 1.0 and not tenants:
        raise typer.BadParameter("--latency-scale is for --tenants; a single world waits in full")
    if tenants:
        app = WorldTenants(loaded, fixture_path=fixture, latency_scale=latency_scale)
        err_console.print(f"sandbox worlds on http://{host}:{port}/t/<tenant>/ (load: /_tenants)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    world = World(loaded, fixture_path=fixture) if loaded else World()
    err_console.print(f"sandbox world on http://{host}:{port} (admin under /_world)")
    uvicorn.run(build_world_app(world), host=host, port=port, log_level="warning")


def _get(url: str, path: str) -> object:
    try:
        response = httpx.get(url.rstrip("/") + path, timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise BackendError(
            f"world at {url}: {exc}", hint="start one with `agentlab world serve`"
        ) from exc
    return response.json()


@app.command(name="snapshot")
def snapshot(url: UrlOption = "http://127.0.0.1:8765") -> None:
    """Print a running world's whole state as JSON."""
    typer.echo(json.dumps(_get(url, "/_world/snapshot"), indent=2, ensure_ascii=False))


@app.command(name="diff")
def diff(url: UrlOption = "http://127.0.0.1:8765") -> None:
    """Print what changed in a running world since its fixture, as JSON."""
    typer.echo(json.dumps(_get(url, "/_world/diff"), indent=2, ensure_ascii=False))
