"""Runs per second replaying a golden-run suite from its cassettes.

Replays every configuration x simulator profile of the suite from the shipped cassettes, all
graders and the metrics database included, ``--rounds`` times, over ``--workers`` processes
(``agentlab.lab.parallel``, as ``agentlab nightly`` does), and prints runs per second per
round and overall. The first round starts with an empty parsed-cassette cache (a fresh
checkout's first replay); the later ones find it filled, as every later replay does.

``--breakdown`` then replays once more in this process under cProfile and prints where a
run's time goes, stage by stage.

    .venv/bin/python benchmarks/replay.py
    .venv/bin/python benchmarks/replay.py --rounds 3 --workers 1 --breakdown
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentlab.lab.metrics import open_metrics
from agentlab.lab.parallel import SuiteJob, default_workers, run_jobs
from agentlab.lab.suite import load_suite

STAGES = {
    "read the cassette (cache or YAML)": "cassettes.py:*(load_cassette)",
    "build the agent (clients, executor, graph copy)": "live.py:*(open_live_agent)",
    "model calls through the OpenAI client": "openai_chat.py:*(acomplete)",
    "cassette matching and playing (model and tool requests)": "cassettes.py:*(_play)",
    "tool calls through the executor": "executor.py:*(call)",
    "grading": "graders.py:*(grade)",
    "metrics: writing runs to DuckDB": "store.py:*(record_runs)",
    "one run, end to end (runner)": "runner.py:*(_run)",
}
"""Stage name to a pstats pattern ``file:line(function)``, ``*`` for the line."""


def jobs_of(suite_name: str) -> list[SuiteJob]:
    suite = load_suite(suite_name)
    return [SuiteJob(suite, config, model) for model in suite.models for config in suite.configs]


def replay_once(jobs: list[SuiteJob], metrics_path: Path, workers: int, concurrency: int) -> int:
    """Replay every job once; the number of runs."""
    with open_metrics(metrics_path) as metrics:
        runs = run_jobs(jobs, metrics=metrics, workers=workers, concurrency=concurrency)
    errors = [r for run in runs for r in run.results if r.error]
    if errors:
        raise SystemExit(f"{len(errors)} replay error(s), first: {errors[0].error}")
    return sum(len(run.results) for run in runs)


def breakdown(jobs: list[SuiteJob], metrics_path: Path, concurrency: int, console: Console) -> None:
    """One more replay in this process under cProfile: milliseconds per run by stage."""
    profiler = cProfile.Profile()
    profiler.enable()
    runs = replay_once(jobs, metrics_path, 1, concurrency)
    profiler.disable()
    stats = pstats.Stats(profiler)
    table = Table(title=f"where a replayed run's time goes (cProfile, {runs} runs, 1 process)")
    table.add_column("stage")
    table.add_column("ms/run", justify="right")
    for stage, pattern in STAGES.items():
        file_part, func = pattern.split(":*")
        seconds = sum(
            entry[3]  # cumulative time
            for (filename, _line, name), entry in stats.stats.items()  # type: ignore[attr-defined]
            if filename.endswith(file_part) and f"({name})" == func
        )
        table.add_row(stage, f"{seconds / runs * 1000:.1f}")
    console.print(table)
    console.print("(cProfile slows Python code about 1.5x; compare stages, not totals)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="helpdesk")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--breakdown", action="store_true", help="profile a run's stages")
    args = parser.parse_args()
    console = Console()
    jobs = jobs_of(args.suite)
    table = Table(
        title=f"replaying {args.suite}: every configuration x simulator profile, "
        f"{args.workers} process(es), {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for column in ("round", "cassette cache", "runs", "seconds", "runs/s", "s per 1,000 runs"):
        table.add_column(column, justify="right")
    total_runs, total_s = 0, 0.0
    with tempfile.TemporaryDirectory() as folder:
        # a cache of its own, empty at first, so round 1 is a fresh checkout's first replay
        os.environ["AGENTLAB_CASSETTE_CACHE"] = str(Path(folder) / "cassette-cache")
        metrics_path = Path(folder) / "lab.duckdb"
        for round_no in range(1, args.rounds + 1):
            started = time.perf_counter()
            runs = replay_once(jobs, metrics_path, args.workers, args.concurrency)
            seconds = time.perf_counter() - started
            total_runs, total_s = total_runs + runs, total_s + seconds
            table.add_row(
                str(round_no),
                "empty" if round_no == 1 else "filled",
                str(runs),
                f"{seconds:.2f}",
                f"{runs / seconds:.1f}",
                f"{seconds / runs * 1000:.1f}",
            )
        table.add_row(
            "all",
            "",
            str(total_runs),
            f"{total_s:.2f}",
            f"{total_runs / total_s:.1f}",
            f"{total_s / total_runs * 1000:.1f}",
        )
        console.print(table)
        if args.breakdown:
            breakdown(jobs, metrics_path, args.concurrency, console)


if __name__ == "__main__":
    main()
