"""``agentlab sim``: serve the offline model simulator over OpenAI's wire protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentlab.cli._console import err_console
from agentlab.llm.sim import build_sim_app, load_profiles

app = typer.Typer(
    help="The offline model simulator (OpenAI-compatible; never a real model).",
    no_args_is_help=True,
)


@app.command(name="serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8766,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            min=0.0,
            help="How much of the modelled latency to wait: 0 answers at once, 1.0 in real time.",
        ),
    ] = 1.0,
    profiles: Annotated[
        Path | None, typer.Option(help="Profiles YAML; default: the built-in sim-large/sim-small.")
    ] = None,
) -> None:
    """Serve the simulator until interrupted (Ctrl-C); point an OpenAI client at /v1."""
    import uvicorn  # noqa: PLC0415 - only this command needs a server

    loaded = load_profiles(profiles)
    err_console.print(
        f"agentlab simulator on http://{host}:{port}/v1 (models: {', '.join(sorted(loaded))}; "
        f"time scale {time_scale})"
    )
    uvicorn.run(
        build_sim_app(loaded, time_scale=time_scale), host=host, port=port, log_level="warning"
    )
