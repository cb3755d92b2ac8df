"""``agentlab run`` and ``agentlab resume``: one task through one agent configuration, live.

By default the model is the bundled simulator and the tools' systems are the sandbox world,
both in-process: no network, no key. ``--model-url`` points at any OpenAI-compatible
endpoint (the key comes from the variable ``--key-env`` names), ``--world-url`` at a running
``agentlab world serve``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agentlab.adapters import open_audit_log, open_conversation_log, open_store
from agentlab.agents import CONFIGS, AgentRun, StopConditions
from agentlab.cli import suites
from agentlab.cli._console import console, err_console
from agentlab.cli._options import (
    AuditUrlOption,
    StoreUrlOption,
    conversation_key,
    resolve_audit_url,
    resolve_store_url,
)
from agentlab.cli._render import timeline_table
from agentlab.core.errors import ConfigError
from agentlab.core.settings import Settings
from agentlab.lab.live import open_live_agent
from agentlab.store.timeline import timeline

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        envvar="AGENTLAB_MODEL",
        help="A simulator profile (sim-large, sim-small) or, with --model-url, the endpoint's "
        "model name. Default: sim-large.",
        show_default=False,
    ),
]
ModelUrlOption = Annotated[
    str | None,
    typer.Option(
        "--model-url",
        envvar="AGENTLAB_MODEL_BASE_URL",
        help="An OpenAI-compatible endpoint (https://.../v1). Default: the simulator, in-process.",
        show_default=False,
    ),
]
WorldUrlOption = Annotated[
    str | None,
    typer.Option(
        "--world-url",
        envvar="AGENTLAB_WORLD_URL",
        help="A running sandbox world (agentlab world serve). Default: one in-process.",
        show_default=False,
    ),
]
CheckpointOption = Annotated[
    str | None,
    typer.Option(
        "--checkpoints",
        envvar="AGENTLAB_CHECKPOINT_URL",
        help="Where graph state is checkpointed. Default: <AGENTLAB_HOME>/checkpoints.duckdb.",
        show_default=False,
    ),
]


def run(  # noqa: PLR0917 -- typer passes each option as a parameter
    task: Annotated[
        str | None,
        typer.Argument(help="What the requester asks, in their words (omit with --suite)."),
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            "-c",
            help=f"One of {', '.join(CONFIGS)} (default single); with --suite, repeat it to "
            "run several (default: the suite's).",
        ),
    ] = None,
    actor: Annotated[str, typer.Option(help="Who asks; the policy's actor.")] = "alice",
    use_case: Annotated[str, typer.Option(help="The policy's use case.")] = "procurement",
    model: ModelOption = None,
    model_url: ModelUrlOption = None,
    world_url: WorldUrlOption = None,
    store: StoreUrlOption = None,
    audit: AuditUrlOption = None,
    checkpoints: CheckpointOption = None,
    seed: Annotated[int | None, typer.Option(help="Sent with every model request.")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Stop after this many tool calls.")] = 12,
    max_cost_usd: Annotated[
        float, typer.Option(min=0.0001, help="Stop after spending this much (USD).")
    ] = 0.5,
    max_wall_time_s: Annotated[
        float,
        typer.Option(min=0.001, help="Stop after working this long (waits for people excluded)."),
    ] = 300.0,
    suite: Annotated[
        str | None,
        typer.Option(
            help="Run a golden-run suite (a name such as helpdesk, or a path) instead of one task.",
            rich_help_panel="Suites",
        ),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="replay, record, upgrade or live (docs/lab.md).", rich_help_panel="Suites"
        ),
    ] = "replay",
    task_id: Annotated[
        list[str] | None,
        typer.Option("--task", help="Only this task (repeatable).", rich_help_panel="Suites"),
    ] = None,
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs per task (pass^k).", rich_help_panel="Suites")
    ] = 1,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Runs in flight at once.", rich_help_panel="Suites")
    ] = 4,
    baseline_model: Annotated[
        str | None,
        typer.Option(
            help="upgrade: whose recorded tools to run against (default: the suite's).",
            rich_help_panel="Suites",
        ),
    ] = None,
    metrics: suites.MetricsOption = None,
    cassettes: suites.CassettesOption = suites.CASSETTES,
    resume_suite: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="Carry on an interrupted experiment with the same settings.",
            rich_help_panel="Suites",
        ),
    ] = True,
    label: Annotated[
        str, typer.Option(help="Stored with the experiment.", rich_help_panel="Suites")
    ] = "",
) -> None:
    """Run one task through an agent configuration and show what happened, or a whole suite.

    A step that needs a person pauses the run: answer it with `agentlab approvals approve`
    (or reject), then carry the run on with `agentlab resume RUN_ID`.

    With --suite, every task of a golden-run suite runs under each configuration, in replay
    (from the cassettes), record, upgrade or live mode; the article's benchmark table follows.
    """
    if suite is not None:
        if task is not None:
            raise ConfigError("give a task or --suite, not both")
        failed = suites.run_suites(
            suite, configs=config or [], models=[model] if model else [], mode=mode,
            repeats=repeats, concurrency=concurrency, task_ids=task_id or [], metrics=metrics,
            cassettes=cassettes, baseline_model=baseline_model, model_url=model_url,
            resume=resume_suite, label=label,
        )  # fmt: skip
        if any(r.error for run in failed for r in run.results):
            raise typer.Exit(1)
        return
    if task is None:
        raise ConfigError(
            "say what to do: a task in quotes, or --suite NAME",
            hint='e.g. agentlab run "Order 16 TONER-BK-05 from SUP-000103."',
        )
    if config and len(config) > 1:
        raise ConfigError("one task runs under one --config")
    config = config or ["single"]
    if config[0] not in CONFIGS:
        raise ConfigError(
            f"--config {config[0]!r} is unknown", hint=f"use one of {', '.join(CONFIGS)}"
        )
    limits = StopConditions(
        max_steps=max_steps, max_cost_usd=max_cost_usd, max_wall_time_s=max_wall_time_s
    )
    result = asyncio.run(
        _run(
            task,
            config=config[0],
            actor=actor,
            use_case=use_case,
            model=model,
            model_url=model_url,
            world_url=world_url,
            store=store,
            audit=audit,
            checkpoints=checkpoints,
            seed=seed,
            limits=limits,
            resume_id=None,
        )
    )
    _show(result, store)


def resume(  # noqa: PLR0917 -- typer passes each option as a parameter
    run_id: Annotated[str, typer.Argument(help="The run to carry on.")],
    model_url: ModelUrlOption = None,
    world_url: WorldUrlOption = None,
    store: StoreUrlOption = None,
    audit: AuditUrlOption = None,
    checkpoints: CheckpointOption = None,
) -> None:
    """Carry on a run that waited for approval (once decided) or whose process died."""
    with open_store(resolve_store_url(store), must_exist=True) as event_store:
        events = event_store.read(run_id)  # type: ignore[arg-type]
    if not events:
        raise ConfigError(f"no run {run_id} in the store", hint="see `agentlab runs list`")
    run_record = events[0].run  # type: ignore[union-attr]
    result = asyncio.run(
        _run(
            run_record.task,
            config=run_record.config or "single",
            actor=run_record.actor,
            use_case="",  # the checkpoint holds the use case the run started in
            model=run_record.model,
            model_url=model_url,
            world_url=world_url,
            store=store,
            audit=audit,
            checkpoints=checkpoints,
            seed=None,
            limits=StopConditions(),
            resume_id=run_id,
        )
    )
    _show(result, store)


async def _run(
    task: str,
    *,
    config: str,
    actor: str,
    use_case: str,
    model: str | None,
    model_url: str | None,
    world_url: str | None,
    store: str | None,
    audit: str | None,
    checkpoints: str | None,
    seed: int | None,
    limits: StopConditions,
    resume_id: str | None,
) -> AgentRun:
    settings = Settings()
    key = conversation_key(settings)
    with (
        open_store(resolve_store_url(store)) as event_store,
        open_audit_log(resolve_audit_url(audit)) as audit_log,
        open_conversation_log(settings.resolved_conversation_url(), key=key) as conversation,
    ):
        async with open_live_agent(
            config,
            store=event_store,
            model=model or settings.model,
            model_base_url=model_url or settings.model_base_url,
            model_api_key_env=settings.model_api_key_env,
            world_url=world_url or settings.world_url,
            checkpoint_url=checkpoints or settings.resolved_checkpoint_url(),
            checkpoint_key=key,  # an open run's conversation is encrypted like the log's
            audit=audit_log,
            conversation=conversation,
            limits=limits,
            seed=seed,
            progress=lambda line: err_console.print(line, highlight=False, markup=False),
        ) as live:
            if resume_id is not None:
                return await live.agent.aresume(resume_id, reason="resumed from the CLI")  # type: ignore[arg-type]
            return await live.agent.arun(task, actor=actor, use_case=use_case)


def _show(result: AgentRun, store: str | None) -> None:
    with open_store(resolve_store_url(store), must_exist=True) as event_store:
        events = event_store.read(result.run_id)
    rows = timeline(events)
    reason = getattr(events[-1], "reason", "") if events[-1].kind == "run_finished" else ""
    console.print(timeline_table(rows, title=f"timeline of {result.run_id}"))
    state = result.state
    cost = sum(call.cost_usd for call in state.model_calls)
    simulated = any(call.is_simulated for call in state.model_calls)
    label = f"{state.run.model} (simulator)" if simulated else str(state.run.model)
    console.print(
        f"[bold]{state.run.config}[/bold] with {label}: {state.status}; "
        f"{len(state.steps)} tool call(s), {len(state.model_calls)} model call(s), "
        f"${cost:.4f}"
    )
    if reason:
        console.print(f"[bold]why[/bold]: {reason}", highlight=False)
    if state.answer:
        console.print(f"[bold]answer[/bold]: {state.answer}", highlight=False)
    if result.is_waiting and result.waiting:
        step = result.waiting["step_id"]
        console.print(
            f"[yellow]waiting for approval[/yellow] of {result.waiting['tool']} ({step}).\n"
            f"  approve: agentlab approvals approve {result.run_id} {step} --reviewer NAME\n"
            f"  then:    agentlab resume {result.run_id}"
        )
