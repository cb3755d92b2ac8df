"""``agentlab serve`` (the HTTP gateway) and ``agentlab tokens`` (who may call it).

The gateway runs agents for actors over HTTP: submit a run, follow its events, answer the
approvals that wait for a person, query the audit log, scrape ``/metrics``. Traces go to an
OpenTelemetry collector when ``--otlp-endpoint`` (``AGENTLAB_OTLP_ENDPOINT``, or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``) is set, else to ``$AGENTLAB_HOME/spans.duckdb``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.table import Table

from agentlab.adapters import open_audit_log, open_conversation_log, open_store
from agentlab.cli._console import console
from agentlab.cli._options import (
    AuditUrlOption,
    StoreUrlOption,
    conversation_key,
    resolve_audit_url,
    resolve_store_url,
)
from agentlab.cli.run import CheckpointOption, ModelOption, ModelUrlOption, WorldUrlOption
from agentlab.core.errors import ConfigError
from agentlab.core.settings import Settings
from agentlab.gateway import GATEWAY_SCOPES, TokenBook, build_gateway_app, issue_token, revoke_token
from agentlab.ops import configure_tracing, load_slos
from agentlab.policy import load_policy
from agentlab.store.audit import MemoryAuditLog
from agentlab.store.memory import MemoryEventStore

TokensOption = Annotated[
    Path | None,
    typer.Option(
        "--tokens",
        "--file",
        envvar="AGENTLAB_TOKENS_FILE",
        help="The token file (hashes only). Default: <AGENTLAB_HOME>/tokens.yaml.",
        show_default=False,
    ),
]


def _tokens_path(tokens: Path | None) -> Path:
    return tokens or Settings().home / "tokens.yaml"


def serve(  # noqa: PLR0917 -- typer passes each option as a parameter
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8780,
    store: StoreUrlOption = None,
    audit: AuditUrlOption = None,
    tokens: TokensOption = None,
    policy: Annotated[
        Path | None, typer.Option(help="A policy file. Default: the embedded policy.")
    ] = None,
    slos: Annotated[
        Path | None,
        typer.Option(
            envvar="AGENTLAB_SLOS_FILE",
            help="An SLO file (docs/operations.md). Default: agentlab/ops/slos.yaml.",
        ),
    ] = None,
    checkpoints: CheckpointOption = None,
    model: ModelOption = None,
    model_url: ModelUrlOption = None,
    world_url: WorldUrlOption = None,
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="AGENTLAB_OTLP_ENDPOINT",
            help="An OpenTelemetry collector's OTLP/HTTP URL (http://collector:4318). "
            "Default: OTEL_EXPORTER_OTLP_ENDPOINT, else spans go to --spans.",
            show_default=False,
        ),
    ] = None,
    spans: Annotated[
        str | None,
        typer.Option(
            envvar="AGENTLAB_SPANS_URL",
            help="Where spans are kept without a collector. "
            "Default: duckdb://<AGENTLAB_HOME>/spans.duckdb.",
            show_default=False,
        ),
    ] = None,
    traces: Annotated[bool, typer.Option(help="Record traces at all.")] = True,
    max_concurrent_runs: Annotated[
        int, typer.Option(min=1, help="Runs working at once; more wait, queued.")
    ] = 8,
    write_openapi: Annotated[
        Path | None,
        typer.Option(help="Write the OpenAPI spec to this file and exit (docs/openapi.json)."),
    ] = None,
) -> None:
    """Serve the HTTP gateway: runs for actors, their events, approvals, audit, /metrics.

    Every endpoint but /healthz and /metrics needs a bearer token: issue one with
    `agentlab tokens issue`. See docs/gateway.md.
    """
    if write_openapi is not None:
        write_openapi.write_text(openapi_text(), encoding="utf-8")
        console.print(f"wrote the OpenAPI spec to {write_openapi}")
        return
    settings = Settings()
    tokens_path = _tokens_path(tokens)
    if not tokens_path.is_file():
        raise ConfigError(
            f"no token file at {tokens_path}: nobody could call the gateway",
            hint="issue one: agentlab tokens issue NAME --actor alice --scope runs:submit "
            "--scope runs:read",
        )
    book = TokenBook.load(tokens_path)
    tracing = None
    if traces:
        endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        spans_url = spans or f"duckdb://{(settings.home / 'spans.duckdb').resolve()}"
        tracing = configure_tracing(
            otlp_endpoint=endpoint, spans_url=None if endpoint else spans_url
        )
        console.print(f"traces go to {tracing.destination}")
    key = conversation_key(settings)
    try:
        with (
            open_store(resolve_store_url(store)) as event_store,
            open_audit_log(resolve_audit_url(audit)) as audit_log,
            open_conversation_log(settings.resolved_conversation_url(), key=key) as conversation,
        ):
            app = build_gateway_app(
                store=event_store,
                audit=audit_log,
                tokens=book,
                policy=load_policy(policy) if policy else None,
                slos=load_slos(slos) if slos else None,
                checkpoint_url=checkpoints or settings.resolved_checkpoint_url(),
                checkpoint_key=key,
                world_url=world_url or settings.world_url,
                model_base_url=model_url or settings.model_base_url,
                model_api_key_env=settings.model_api_key_env,
                default_model=model or settings.model,
                conversation=conversation,
                max_concurrent_runs=max_concurrent_runs,
                on_shutdown=(tracing.shutdown,) if tracing is not None else (),
            )
            console.print(
                f"agentlab gateway on http://{host}:{port} "
                f"({len(book.records)} token(s) from {tokens_path}); docs at /docs"
            )
            uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")
    finally:
        if tracing is not None:
            tracing.shutdown()


def openapi_text() -> str:
    """The gateway's OpenAPI spec as the repository keeps it (docs/openapi.json)."""
    app = build_gateway_app(store=MemoryEventStore(), audit=MemoryAuditLog(), tokens=TokenBook(()))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


tokens_app = typer.Typer(
    help="Issue, list and revoke the gateway's bearer tokens.", no_args_is_help=True
)


@tokens_app.command(name="issue")
def issue(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. alice-laptop.")],
    actor: Annotated[str, typer.Option(help="Who calls with it (the policy's actor).")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help=f"A scope to grant; repeat. The gateway's: {', '.join(GATEWAY_SCOPES)}; "
            "tool scopes (erp:write) let a reviewer approve that tool's commits.",
        ),
    ],
    tokens: TokensOption = None,
) -> None:
    """Make a token and print it once; only its hash is kept."""
    path = _tokens_path(tokens)
    issued = issue_token(path, name=name, actor=actor, scopes=tuple(scope))
    console.print(
        f"token {name!r} for {actor} with {', '.join(issued.record.scopes)} (kept in {path}):"
    )
    # The token alone on stdout, so a script can capture it; it is shown this once.
    typer.echo(issued.token)


@tokens_app.command(name="list")
def list_tokens(tokens: TokensOption = None) -> None:
    """List the tokens by name, actor and scopes (the tokens themselves are not kept)."""
    path = _tokens_path(tokens)
    book = TokenBook.load(path)
    table = Table(title=f"{len(book.records)} token(s) in {path}", title_justify="left")
    for column in ("name", "actor", "scopes", "created"):
        table.add_column(column, overflow="fold")
    for record in book.records:
        created = record.created_at.isoformat(timespec="seconds") if record.created_at else ""
        table.add_row(record.name, record.actor, " ".join(record.scopes), created)
    console.print(table)


@tokens_app.command(name="revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    tokens: TokensOption = None,
) -> None:
    """Remove a token; a running gateway refuses it after its next start."""
    record = revoke_token(_tokens_path(tokens), name)
    console.print(f"revoked {record.name!r} ({record.actor}); restart the gateway to drop it")
