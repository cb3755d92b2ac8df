"""``agentlab agentdojo``: AgentDojo's suites run by agentlab's agents, graded by AgentDojo."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from agentlab.cli._console import console, err_console

app = typer.Typer(
    help="AgentDojo's workspace, travel, banking and slack suites (pip install "
    "'agentlab[agentdojo]'); docs/agentdojo.md.",
    no_args_is_help=True,
)

SuiteOption = Annotated[
    str,
    typer.Option("--suite", help="workspace, travel, banking or slack.", show_default=False),
]
VersionOption = Annotated[str, typer.Option("--version", help="AgentDojo's benchmark version.")]


@app.command(name="run")
def run(  # noqa: PLR0917 -- typer passes each option as a parameter
    suite: SuiteOption,
    config: Annotated[str, typer.Option(help="single or multi.")] = "single",
    model: Annotated[
        str, typer.Option(help="A simulator profile, or an endpoint's model with --model-url.")
    ] = "sim-large",
    model_url: Annotated[
        str | None,
        typer.Option(
            "--model-url",
            envvar="AGENTLAB_MODEL_URL",
            help="An OpenAI-compatible endpoint (its key in OPENAI_API_KEY); default: the "
            "simulator, in-process.",
        ),
    ] = None,
    defences: Annotated[
        str,
        typer.Option(
            help="all, none, a list of layers to turn on (spotlighting,injection_screen), or "
            "all,-layer to turn one off.",
        ),
    ] = "all",
    limit: Annotated[
        int | None, typer.Option(min=1, help="The first N user tasks only.", show_default=False)
    ] = None,
    injections: Annotated[
        bool,
        typer.Option(
            "--injections/--no-injections",
            help="Also run each user task with each injection task's attack in place.",
        ),
    ] = True,
    injection_limit: Annotated[
        int | None,
        typer.Option(min=1, help="The first N injection tasks only.", show_default=False),
    ] = None,
    attack: Annotated[
        str, typer.Option(help="The AgentDojo attack that writes the injections.")
    ] = "injecagent",
    version: VersionOption = "v1.2.2",
) -> None:
    """Run a suite's user tasks (and user x injection pairs); print utility and attack success."""
    from agentlab.bench.agentdojo import run_agentdojo  # noqa: PLC0415 - needs the extra

    summary = run_agentdojo(
        suite,
        config=config,
        model=model,
        defences=defences,
        limit=limit,
        injection_limit=injection_limit,
        with_injections=injections,
        attack=attack,
        version=version,
        model_base_url=model_url,
    )
    simulated = " (agentlab simulator, not a vendor's model)" if model_url is None else ""
    table = Table(
        title=f"AgentDojo {version} {suite}: {config}, {model}{simulated}, defences {defences}"
    )
    for column in ("runs", "measure", "rate"):
        table.add_column(column)
    benign, attacked = summary.benign, summary.attacked
    table.add_row(str(len(benign)), "utility (no injection)", f"{summary.utility:.1%}")
    if attacked:
        table.add_row(
            str(len(attacked)), "utility under attack", f"{summary.utility_under_attack:.1%}"
        )
        table.add_row(
            str(len(attacked)),
            f"attack success ({attack})",
            f"{summary.attack_success_rate:.1%}",
        )
    console.print(table)
    failed = [r for r in summary.results if r.error]
    if failed:
        err_console.print(
            f"{len(failed)} run(s) did not finish as succeeded (e.g. {failed[0].error})"
        )


@app.command(name="check")
def check(
    suite: SuiteOption,
    defences: Annotated[
        str, typer.Option(help="The layers in the replay (none: the adapter alone).")
    ] = "none",
    version: VersionOption = "v1.2.2",
) -> None:
    """Replay each user task's ground truth through the adapter; compare with AgentDojo's grade.

    Exits 1 when the two grades differ for any task (with --defences none), so a change to
    the adapter that breaks grading is caught.
    """
    from agentlab.bench.agentdojo import check_ground_truths  # noqa: PLC0415 - needs the extra

    checks = check_ground_truths(suite, version=version, defences=defences)
    table = Table(title=f"AgentDojo {version} {suite}: ground truths, defences {defences}")
    for column in ("user task", "AgentDojo", "agentlab", "stopped by the defences"):
        table.add_column(column)
    for item in checks:
        if not item.agrees or item.blocked:
            table.add_row(
                item.user_task,
                str(item.agentdojo_utility),
                str(item.agentlab_utility),
                ", ".join(item.blocked),
            )
    agree = sum(c.agrees for c in checks)
    console.print(table)
    console.print(f"{agree} of {len(checks)} ground truths graded alike")
    if defences == "none" and agree != len(checks):
        raise typer.Exit(1)
