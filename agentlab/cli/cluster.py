"""``agentlab cluster run``: a suite's runs on a Dask cluster, results in PostgreSQL.

Point it at a running scheduler (``--scheduler tcp://host:8786``, started with ``dask
scheduler`` and ``dask worker``), or let it start a ``LocalCluster`` on this machine
(``--local-workers``). Results and events go to the PostgreSQL experiment log (``--store``)
as each run finishes; caps and the LLM budget are shared through Redis (``--redis``). When
the suite is done its experiments are copied into the DuckDB metrics file, and the article's
benchmark table is printed from there. docs/scale-out.md says how to set it up.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer

from agentlab.cli._console import console, err_console
from agentlab.cli.suites import (
    CassettesOption,
    MetricsOption,
    metrics_path,
    run_progress,
    show_experiments,
)
from agentlab.core.errors import ConfigError, StoreError
from agentlab.lab.metrics import MetricsStore, open_metrics
from agentlab.lab.metrics.transfer import copy_experiments
from agentlab.lab.runner import CASSETTES
from agentlab.lab.suite import load_suite

app = typer.Typer(help="Run suites on a Dask cluster (docs/scale-out.md).", no_args_is_help=True)


@app.command(name="run")
def run(  # noqa: PLR0917 -- typer passes each option as a parameter
    suite: Annotated[str, typer.Option(help="The suite: a name such as helpdesk, or a path.")],
    store: Annotated[
        str,
        typer.Option(
            "--store",
            envvar="AGENTLAB_STORE_URL",
            help="The PostgreSQL database every worker records into (postgresql://...).",
        ),
    ],
    config: Annotated[
        list[str] | None,
        typer.Option("--config", "-c", help="A configuration (repeatable; default: all)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="A model (repeatable; default: the suite's baseline)."),
    ] = None,
    mode: Annotated[str, typer.Option(help="replay, upgrade or live (docs/lab.md).")] = "replay",
    scheduler: Annotated[
        str | None,
        typer.Option(
            envvar="AGENTLAB_DASK_SCHEDULER",
            help="A Dask scheduler's address (tcp://host:8786). Default: a LocalCluster here.",
            show_default=False,
        ),
    ] = None,
    local_workers: Annotated[
        int, typer.Option(min=1, help="Without --scheduler: worker processes to start.")
    ] = 2,
    redis: Annotated[
        str | None,
        typer.Option(
            envvar="AGENTLAB_REDIS_URL",
            help="Redis for caps and the LLM budget shared cluster-wide (redis://host:6379/0). "
            "Live runs without it keep caps per worker.",
            show_default=False,
        ),
    ] = None,
    namespace: Annotated[
        str, typer.Option(help="The prefix of the Redis keys, to keep clusters apart.")
    ] = "agentlab",
    world_url: Annotated[
        str | None,
        typer.Option(
            envvar="AGENTLAB_WORLD_URL",
            help="Live mode: a tenants world server (agentlab world serve --tenants). "
            "Default: a world per run inside its worker.",
            show_default=False,
        ),
    ] = None,
    model_url: Annotated[
        str | None,
        typer.Option(
            envvar="AGENTLAB_MODEL_BASE_URL",
            help="An OpenAI-compatible endpoint for upgrade and live. Default: the simulator.",
            show_default=False,
        ),
    ] = None,
    time_scale: Annotated[
        float, typer.Option(min=0.001, help="Live with the simulator: run this much faster.")
    ] = 1.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs in flight per chunk.")] = 4,
    chunk_size: Annotated[int, typer.Option(min=1, help="Runs per Dask task.")] = 8,
    repeats: Annotated[int, typer.Option(min=1, help="Runs per task (pass^k).")] = 1,
    task_id: Annotated[
        list[str] | None, typer.Option("--task", help="Only this task (repeatable).")
    ] = None,
    label: Annotated[str, typer.Option(help="Stored with each experiment.")] = "cluster",
    resume: Annotated[
        bool, typer.Option(help="Carry on an unfinished experiment with the same spec.")
    ] = True,
    cassettes: CassettesOption = CASSETTES,
    metrics: MetricsOption = None,
) -> None:
    """Run a suite's configurations x models on a Dask cluster; print the benchmark table."""
    from distributed import Client, LocalCluster  # noqa: PLC0415 -- the cluster extra

    from agentlab.lab.cluster import ClusterOptions, run_on_cluster  # noqa: PLC0415
    from agentlab.lab.experiment_logs import open_experiment_log  # noqa: PLC0415
    from agentlab.lab.parallel import SuiteJob  # noqa: PLC0415

    if mode not in ("replay", "upgrade", "live"):
        raise typer.BadParameter(f"--mode must be replay, upgrade or live, not {mode!r}")
    if not store.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "--store must be a PostgreSQL URL: every worker records into it",
            hint="e.g. --store postgresql://agentlab@db-host/agentlab",
        )
    loaded = load_suite(suite)
    jobs = [
        SuiteJob(loaded, c, m)
        for m in (model or [loaded.baseline_model])
        for c in (config or loaded.configs)
    ]
    options = ClusterOptions(
        store_url=store,
        redis_url=redis,
        namespace=namespace,
        world_url=world_url,
        mode=mode,  # type: ignore[arg-type]  # checked by run_on_cluster
        cassettes=cassettes,
        concurrency=concurrency,
        chunk_size=chunk_size,
        time_scale=time_scale,
        model_base_url=model_url,
    )
    with ExitStack() as stack:
        if scheduler is None:
            err_console.print(f"starting a LocalCluster of {local_workers} workers ...")
            where: Client | str = stack.enter_context(
                Client(
                    stack.enter_context(
                        LocalCluster(
                            n_workers=local_workers, threads_per_worker=1, dashboard_address=":0"
                        )
                    )
                )
            )
        else:
            where = scheduler
        advance = stack.enter_context(run_progress(f"{loaded.name} on the cluster ({mode})"))
        outcome = run_on_cluster(
            jobs,
            client=where,
            options=options,
            label=label,
            resume=resume,
            tasks=task_id or None,
            repeats=repeats,
            on_result=advance,
        )
    finished = [run for run in outcome.runs if run.experiment.finished_at is not None]
    with open_experiment_log(store) as log, open_metrics(metrics_path(metrics)) as kept:
        copied = [run for run in finished if _missing(kept, run.experiment.experiment_id)]
        copy_experiments(log, kept, [run.experiment.experiment_id for run in copied])  # type: ignore[arg-type]
        if finished:
            show_experiments(kept, finished)
    for run in outcome.runs:
        if run.experiment.finished_at is None:
            err_console.print(
                f"{run.experiment.experiment_id} ({run.experiment.spec.config}) is not finished: "
                "run the same command again to carry it on"
            )
    workers = ", ".join(f"{name}: {n}" for name, n in sorted(outcome.workers.items()))
    console.print(f"runs recorded by worker: {workers}")
    for system, peak in outcome.peak_in_flight.items():
        cap = loaded.loaded_policy.rate_limits.tools[system].concurrency
        console.print(f"{system}: at most {peak} calls in flight cluster-wide (cap {cap})")


def _missing(metrics: MetricsStore, experiment_id: str) -> bool:
    """True when the DuckDB metrics file does not hold the experiment yet."""
    try:
        metrics.experiment(experiment_id)
    except StoreError:
        return True
    return False
