"""Live throughput at the bound the caps and the LLM budget allow (Little's law).

500 runs of the ``single`` agent at once, against the simulator and the sandbox world
in-process (httpx ASGI transports), with realistic latencies: the simulator sleeps the
model's modelled latency (``sim-large``: 0.65 s + 14 ms per completion token, about 1-3 s a
call), the ERP answers in 400 ms, mail in 250 ms, the help desk and knowledge base in
150 ms. The policy is the embedded default, the article's ``rateLimits``: ERP 5 calls in
flight, mail 20, and an LLM budget of 300 requests and 200,000 tokens a minute, shared by
all runs. The tasks are the helpdesk suite's purchase orders and mails, cycled; the suite's
scripted reviewer approves.

So the whole benchmark fits in about three minutes, every time in it is compressed by one
factor (``--time-scale``, default 4): latencies are divided by it and the budget's per-minute
limits multiplied by it. Ratios stay as they are (model seconds : tool hundreds of ms :
budget minutes), so the share of the bound reached is what it would be uncompressed; the
event loop's own CPU time per run is the one thing not compressed, so a larger factor is a
harder test.

The bound is Little's law over each shared resource: throughput <= capacity / demand per
run, with the demand measured from the runs themselves (seconds each run held an ERP or a
mail slot; LLM requests and tokens each run spent). The budget's buckets start full (a
minute's worth), which a finite batch may spend at once, so the batch bound also gives each
bucket that credit: the time to finish N runs is at least (N x demand - burst) / rate.
Achieved throughput is N over the wall time from the first start to the last finish.

    .venv/bin/python benchmarks/live_throughput.py
    .venv/bin/python benchmarks/live_throughput.py --runs 200 --time-scale 2
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from agentlab.lab.live import open_live_agent
from agentlab.lab.reviewer import suite_reviewer
from agentlab.lab.runner import compressed
from agentlab.lab.suite import load_suite
from agentlab.policy import default_policy
from agentlab.runtime import ToolCaps
from agentlab.store import MemoryEventStore

TASKS = (
    "po-toner",
    "po-paper",
    "po-docks",
    "po-adapters",
    "po-wipes",
    "po-two-lines",
    "mail-buyer",
    "mail-mika",
    "mail-two-recipients",
    "mail-order-then-notify",
)
"""The helpdesk suite's tasks the runs cycle through: purchase orders (ERP) and mail."""
WORLD_LATENCY_MS = {"erp": 400, "mail": 250, "helpdesk": 150, "kb": 150, "rpa": 400}
"""Service times before compression: tools answer in hundreds of milliseconds."""
CAPPED = {"erp_api": "ERP", "email_send": "mail"}
"""The systems with a concurrency cap in the article's policy, and how the table names them."""


class MeteredCaps(ToolCaps):
    """ToolCaps that also add up how long each system's slots were held: the demand per run."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.held_s: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, system: str) -> AsyncIterator[None]:
        async with super().slot(system):
            began = time.perf_counter()
            self.first.setdefault(system, began)
            try:
                yield
            finally:
                self.last[system] = time.perf_counter()
                self.held_s[system] += self.last[system] - began
                self.calls[system] += 1


@dataclass
class Outcome:
    """What the benchmark measured."""

    runs: int
    succeeded: int
    wall_s: float
    requests: int
    tokens: int
    held_s: dict[str, float]
    calls: dict[str, int]
    peak: dict[str, int]
    busy_s: dict[str, float]
    """From the first call's slot to the last call's release, per system."""
    first_s: dict[str, float]
    """When the first call took a slot, seconds from the start, per system."""
    world_peak: dict[str, int]
    budget_waited_s: float
    cpu_s: float
    finished_s: list[float]
    """When each run finished, seconds from the start, in order."""


async def measure(runs: int, factor: float, model: str, *, use_budget: bool) -> Outcome:
    """Run ``runs`` runs at once through one agent (one executor, one budget, one world)."""
    suite = load_suite("helpdesk")
    by_id = {task.id: task for task in suite.tasks}
    tasks = [by_id[TASKS[n % len(TASKS)]] for n in range(runs)]
    policy = compressed(default_policy(), factor)
    store = MemoryEventStore()
    async with open_live_agent(
        "single",
        store=store,
        model=model,
        policy=policy,
        reviewer=suite_reviewer(suite.reviewer),
        sim_time_scale=1 / factor,
        use_budget=use_budget,
        seed=0,
    ) as live:
        assert live.world is not None
        live.world.set_latency({s: round(ms / factor) for s, ms in WORLD_LATENCY_MS.items()})
        caps = MeteredCaps(policy.rate_limits)
        live.agent.executor.caps = caps
        budget = live.model.budget
        finished_s: list[float] = []

        async def one(n: int) -> tuple[bool, int, int]:
            task = tasks[n]
            run = await live.agent.arun(task.text, actor=task.actor, use_case=task.use_case)
            finished_s.append(time.perf_counter() - began)
            calls = run.state.model_calls
            tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
            return run.state.status == "succeeded", len(calls), tokens

        cpu_began = time.process_time()
        began = time.perf_counter()
        done = await asyncio.gather(*(one(n) for n in range(runs)))
        wall_s = time.perf_counter() - began
        cpu_s = time.process_time() - cpu_began
        world_peak = live.world.stats()["in_flight_max"]
        return Outcome(
            runs=runs,
            succeeded=sum(ok for ok, _, _ in done),
            wall_s=wall_s,
            requests=sum(calls for _, calls, _ in done),
            tokens=sum(tokens for _, _, tokens in done),
            held_s={s: caps.held_s[s] for s in CAPPED},
            calls={s: caps.calls[s] for s in CAPPED},
            peak={s: caps.peak_in_flight(s) for s in CAPPED},
            busy_s={s: caps.last.get(s, 0.0) - caps.first.get(s, 0.0) for s in CAPPED},
            first_s={s: caps.first.get(s, began) - began for s in CAPPED},
            world_peak={"erp_api": world_peak["erp"], "email_send": world_peak["mail"]},
            budget_waited_s=budget.total_waited_s if budget is not None else 0.0,
            cpu_s=cpu_s,
            finished_s=finished_s,
        )


def report(console: Console, out: Outcome, *, factor: float, model: str, use_budget: bool) -> bool:
    """Print one scenario's tables; False when a cap was exceeded."""
    policy = default_policy()
    llm = policy.rate_limits.llm
    assert llm is not None
    n = out.runs
    title = "article's caps and LLM budget" if use_budget else "caps only (no LLM budget)"
    # (resource, capacity, demand per run, steady bound in runs/s, batch minimum seconds)
    rows: list[tuple[str, str, str, float, float]] = []
    for system, label in CAPPED.items():
        cap = policy.rate_limits.tools[system].concurrency
        assert cap is not None
        demand = out.held_s[system] / n
        steady = cap / demand if demand else float("inf")
        rows.append(
            (
                f"{label} ({system})",
                f"{cap} in flight",
                f"{demand * 1000:.0f} ms held, {out.calls[system] / n:.2f} calls",
                steady,
                n / steady,
            )
        )
    if use_budget:
        for label, per_minute, demand in (
            ("LLM requests", llm.requests_per_minute * factor, out.requests / n),
            ("LLM tokens", llm.tokens_per_minute * factor, out.tokens / n),
        ):
            steady = per_minute / 60 / demand
            # the bucket starts full: a minute's worth may go at once
            batch_s = max(0.0, n * demand - per_minute) / (per_minute / 60)
            rows.append(
                (
                    label,
                    f"{per_minute:,.0f}/min ({per_minute / factor:,.0f} x {factor:g})",
                    f"{demand:,.1f}",
                    steady,
                    batch_s,
                )
            )
    binding = min(rows, key=lambda r: r[3])
    steady_bound = binding[3]
    batch_bound = n / max(r[4] for r in rows)
    achieved = n / out.wall_s
    # the middle of the batch, after the buckets' first minute and before the last runs drain
    times = sorted(out.finished_s)
    low, high = int(0.5 * n), int(0.9 * n) - 1
    window = (high - low) / (times[high] - times[low]) if high > low else float("nan")

    derivation = Table(title=f"{title}: the bound (Little's law), time compressed {factor:g}x")
    for column in ("resource", "capacity", "demand per run", "bound runs/s", "batch needs s"):
        derivation.add_column(column, justify="right")
    for name, capacity, demand, steady, seconds in rows:
        derivation.add_row(name, capacity, demand, f"{steady:.2f}", f"{seconds:.1f}")
    console.print(derivation)

    caps_table = Table(title=f"{title}: most calls in flight at one moment")
    columns = (
        "system",
        "cap",
        "peak (ToolCaps)",
        "peak (world)",
        "calls",
        "busy from-to s",
        "slots used",
    )
    for column in columns:
        caps_table.add_column(column, justify="right")
    for system in CAPPED:
        cap = policy.rate_limits.tools[system].concurrency or 1
        busy = out.busy_s[system]
        caps_table.add_row(
            system,
            str(cap),
            str(out.peak[system]),
            str(out.world_peak[system]),
            str(out.calls[system]),
            f"{out.first_s[system]:.1f}-{out.first_s[system] + busy:.1f}",
            # slot-seconds held over slot-seconds available from its first call to its last
            f"{out.held_s[system] / (cap * busy):.0%}" if busy else "-",
        )
    console.print(caps_table)

    result = Table(title=f"{title}: {n} runs at once ({model}, single), compressed {factor:g}x")
    for column in ("measure", "value"):
        result.add_column(column, justify="right")
    rows_out = [
        ("runs succeeded", f"{out.succeeded}/{n}"),
        ("wall time", f"{out.wall_s:.1f} s ({out.wall_s * factor:.0f} s uncompressed)"),
        ("achieved, whole batch", f"{achieved:.2f} runs/s"),
        (
            "batch bound (buckets start full)",
            f"{batch_bound:.2f} runs/s: {achieved / batch_bound:.0%}",
        ),
        (f"steady bound ({binding[0]})", f"{steady_bound:.2f} runs/s"),
        ("LLM budget waits", f"{out.budget_waited_s:,.0f} s summed over requests"),
        ("event loop CPU", f"{out.cpu_s:.1f} s ({1000 * out.cpu_s / n:.0f} ms per run)"),
    ]
    if not use_budget:
        # without buckets there is no burst, so the middle of the batch is the steady state
        rows_out.insert(
            5,
            ("achieved, runs 50%-90%", f"{window:.2f} runs/s: {window / steady_bound:.0%}"),
        )
    for name, value in rows_out:
        result.add_row(name, value)
    console.print(result)
    return all(
        out.peak[s] <= (policy.rate_limits.tools[s].concurrency or 0)
        and out.world_peak[s] <= (policy.rate_limits.tools[s].concurrency or 0)
        for s in CAPPED
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument(
        "--scenario", choices=("budget", "caps", "both"), default="both", help="which to run"
    )
    parser.add_argument(
        "--time-scale", type=float, default=8.0, help="time compression with the LLM budget"
    )
    parser.add_argument(
        "--caps-time-scale", type=float, default=1.0, help="time compression without it"
    )
    parser.add_argument("--model", default="sim-large")
    args = parser.parse_args()
    console = Console(width=120)
    held = True
    for use_budget, factor in ((True, args.time_scale), (False, args.caps_time_scale)):
        if args.scenario != "both" and (args.scenario == "budget") != use_budget:
            continue
        out = asyncio.run(measure(args.runs, factor, args.model, use_budget=use_budget))
        held &= report(console, out, factor=factor, model=args.model, use_budget=use_budget)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak RSS of this process: {rss_mb:.0f} MB")
    if not held:
        sys.exit("a concurrency cap was exceeded (see the peaks above)")


if __name__ == "__main__":
    main()
