"""The simulator's profiles and the three agent configurations on the same tasks.

Runs every task of ``tests/agent_tasks.py`` under each configuration (chat_rag, single,
multi) with each simulator profile (sim-large, sim-small), once per seed, in-process (the
simulator and the sandbox world over httpx ASGI transports), and prints per cell:

* success: the world (and the answer) as the task's check expects;
* silent errors: runs that ended "succeeded" although the check fails -- an error that
  reached the requester unnoticed;
* caught: failed verifications (rules or model) during the runs -- errors stopped before
  the end; only ``multi`` has a verifier;
* the mean model calls, tool calls and cost per run.

These are simulator figures: they compare configurations and profiles with each other, and
say nothing about any vendor's model.

    .venv/bin/python benchmarks/agent_configs.py
    .venv/bin/python benchmarks/agent_configs.py --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.agent_tasks

from tests.agent_tasks import TASKS, TaskResult, evaluate

CONFIGS = ("chat_rag", "single", "multi")
MODELS = ("sim-large", "sim-small")


async def main(seeds: list[int]) -> None:
    console = Console()
    table = Table(title=f"{len(TASKS)} tasks x {len(seeds)} seed(s) per cell (simulator)")
    for column in (
        "config",
        "model",
        "success",
        "silent errors",
        "caught",
        "model calls",
        "tool calls",
        "cost/run USD",
        "s",
    ):
        table.add_column(column, justify="right" if column not in ("config", "model") else "left")
    for config in CONFIGS:
        for model in MODELS:
            began = time.perf_counter()
            results: list[TaskResult] = []
            for seed in seeds:
                results += await evaluate(config, model, seed=seed)
            took = time.perf_counter() - began
            n = len(results)
            table.add_row(
                config,
                model,
                f"{sum(r.is_success for r in results)}/{n}",
                str(sum(r.claimed_success_wrongly for r in results)),
                str(sum(r.verifier_catches for r in results)),
                f"{sum(len(r.state.model_calls) for r in results) / n:.1f}",
                f"{sum(len(r.state.steps) for r in results) / n:.1f}",
                f"{sum(c.cost_usd for r in results for c in r.state.model_calls) / n:.4f}",
                f"{took:.1f}",
            )
            failed = sorted({r.task.task_id for r in results if not r.is_success})
            console.print(f"{config}/{model}: not done: {', '.join(failed) or '-'}")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    asyncio.run(main(parser.parse_args().seeds))
