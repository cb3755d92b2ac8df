"""``agentlab compare``: two experiments, or a candidate model against a baseline's recordings.

With two experiment ids it compares what the metrics database holds. With ``--suite`` it runs
what it needs first: the baseline model's recordings replayed, and the candidate in
``upgrade`` mode (live, its tools played from the baseline's cassettes, so a side effect the
baseline never made is not sent but shown as a diff).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentlab.cli import suites
from agentlab.cli.lab_output import show_comparison
from agentlab.core.errors import ConfigError
from agentlab.lab.compare import compare as compare_runs
from agentlab.lab.metrics import open_metrics
from agentlab.lab.runner import CASSETTES, run_suite
from agentlab.lab.suite import load_suite


def compare(  # noqa: PLR0917 -- typer passes each option as a parameter
    baseline: Annotated[
        str | None, typer.Argument(help="The baseline experiment's id (agentlab experiments).")
    ] = None,
    candidate: Annotated[str | None, typer.Argument(help="The candidate experiment's id.")] = None,
    suite: Annotated[
        str | None, typer.Option(help="Run a suite's baseline and candidate, then compare.")
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option("--config", "-c", help="Configurations to compare (default: the suite's)."),
    ] = None,
    baseline_model: Annotated[
        str | None, typer.Option(help="Default: the suite's baseline model.")
    ] = None,
    candidate_model: Annotated[str, typer.Option(help="The model under test.")] = "sim-small",
    mode: Annotated[
        str,
        typer.Option(help="How the candidate runs: upgrade (live, recorded tools) or replay."),
    ] = "upgrade",
    model_url: Annotated[
        str | None,
        typer.Option(
            "--model-url",
            envvar="AGENTLAB_MODEL_BASE_URL",
            help="The candidate's OpenAI-compatible endpoint; default the simulator.",
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Candidate runs per task (pass^k).")] = 1,
    metrics: suites.MetricsOption = None,
    cassettes: Annotated[Path, typer.Option(help="The cassette library's root.")] = CASSETTES,
    boot: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = 2000,
) -> None:
    """Per-metric deltas with bootstrap intervals, pass^k, and side-effect diffs by task."""
    if mode not in ("upgrade", "replay"):
        raise ConfigError(
            f"--mode {mode!r}: the candidate runs in upgrade or replay mode",
            hint="to re-record cassettes, use agentlab run --suite NAME --mode record",
        )
    with open_metrics(suites.metrics_path(metrics)) as store:
        if baseline and candidate:
            if suite:
                raise ConfigError("give two experiment ids or --suite, not both")
            sides = []
            for experiment_id in (baseline, candidate):
                store.experiment(experiment_id)  # an unknown id is a clear error
                results = store.results(experiment_id)
                if not results:
                    raise ConfigError(
                        f"experiment {experiment_id} holds no runs",
                        hint="see `agentlab experiments`",
                    )
                sides.append(results)
            show_comparison(compare_runs(sides[0], sides[1], n_boot=boot))
            return
        if suite is None:
            raise ConfigError(
                "say what to compare: two experiment ids, or --suite NAME",
                hint="list experiments with `agentlab experiments`",
            )
        loaded = load_suite(suite)
        base_model = baseline_model or loaded.baseline_model
        for name in config or loaded.configs:
            base = run_suite(
                loaded, config=name, model=base_model, mode="replay", metrics=store,
                cassettes=cassettes, resume=False, label="compare",
            )  # fmt: skip
            cand = run_suite(
                loaded, config=name, model=candidate_model, mode=mode, metrics=store,
                cassettes=cassettes, baseline_model=base_model, model_base_url=model_url,
                repeats=repeats, resume=False, label="compare",
            )  # fmt: skip
            show_comparison(compare_runs(base.results, cand.results, n_boot=boot))
