"""agentlab's replay side by side with inspect-ai on the same tool-using tasks, one process.

The tasks are the helpdesk suite's reads, purchase orders, mails and ticket changes whose
``single`` / ``sim-large`` run made one or two tool calls (about forty). Both sides play the
same recorded model answers:

* **inspect-ai**: a ``Task`` per run of ``--rounds`` epochs, ``use_tools`` + ``generate``
  over real ``@tool`` functions (the agent's tools by name and arguments), the built-in
  ``mockllm/model`` answering with a ``custom_outputs`` callable that plays each sample's
  recorded answers in turn -- tool calls, then the final text -- with ``usage`` set from the
  recording (so it never counts tokens with a tokenizer it would download), and a scorer
  checking the answer for the task's expected strings. Logs go to a temporary folder.
* **agentlab**: ``run_suite(..., mode="replay")`` of the same task ids, ``--rounds`` times,
  with everything a replay does: the governed executor over the recorded world, all graders
  (and the read tasks' recorded judge), the metrics database.

So the comparison is harness against harness for the same model turns and tool calls; the
agentlab side does more per sample (policy, dry-runs, idempotency, events, grading against
the world). Network is off for both: sockets other than local pipes raise, and the table
says how many were tried.

    .venv/bin/python benchmarks/vs_inspect.py
    .venv/bin/python benchmarks/vs_inspect.py --rounds 10
"""

from __future__ import annotations

import os

# Before inspect_ai is imported: nothing to fetch, nothing to show.
os.environ.setdefault("INSPECT_DISPLAY", "none")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.pop("INSPECT_TELEMETRY", None)

import argparse
import json
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    ModelUsage,
    get_model,
)
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer
from inspect_ai.solver import TaskState, generate, use_tools
from inspect_ai.tool import Tool, ToolCall, ToolChoice, ToolInfo, tool
from rich.console import Console
from rich.table import Table

from agentlab.lab.metrics import open_metrics
from agentlab.lab.runner import CASSETTES, run_suite
from agentlab.lab.suite import load_suite

CONFIG, MODEL = "single", "sim-large"
KINDS = ("read", "purchase_order", "mail", "ticket")


@dataclass
class Recorded:
    """One task's recorded model turns and the world's answers to its tool calls."""

    task_id: str
    text: str
    expected: tuple[str, ...]
    turns: list[dict[str, Any]]
    """The model's messages in order (``tool_calls`` or ``content``), with ``usage``."""


RESULTS: dict[tuple[str, str], str] = {}
"""(tool, arguments as sorted JSON) -> what the world answered, from the recordings."""
BY_TEXT: dict[str, Recorded] = {}
TOOL_CALLS = {"answered": 0, "unrecorded": 0}
"""What the inspect-ai side's tools were asked, and how often the recordings had no answer."""


def load_recordings(max_tool_calls: int) -> list[Recorded]:
    """The suite's tasks of ``KINDS`` whose recorded run made 1 to ``max_tool_calls`` calls."""
    suite = load_suite("helpdesk")
    found = []
    for task in suite.tasks:
        if task.kind not in KINDS:
            continue
        path = CASSETTES / suite.name / CONFIG / MODEL / f"{task.id}.yaml"
        interactions = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)["interactions"]
        turns: list[dict[str, Any]] = []
        pending: list[tuple[str, str]] = []
        answers: list[Any] = []
        for item in interactions:
            body = item["response"]["body"]["json"]
            if "/chat/completions" in item["request"]["uri"]:
                if "tools" not in item["request"]["body"]["json"]:
                    continue  # a judge's call, not the agent's
                for key in pending:
                    RESULTS[key] = json.dumps(answers)
                message = body["choices"][0]["message"]
                turns.append({**message, "usage": body["usage"]})
                pending = [
                    (
                        call["function"]["name"],
                        json.dumps(json.loads(call["function"]["arguments"]), sort_keys=True),
                    )
                    for call in message.get("tool_calls") or []
                ]
                answers = []
            elif not item["request"]["uri"].endswith("/_world/diff"):
                answers.append(body)
        names = [c["function"]["name"] for t in turns for c in t.get("tool_calls") or []]
        if (
            not 1 <= len(names) <= max_tool_calls
            or turns[-1].get("tool_calls")
            or not set(names) <= TOOL_NAMES
        ):
            continue
        expected = task.expect.answer.contains_all if task.expect.answer else ()
        recorded = Recorded(task.id, task.text, tuple(expected), turns)
        BY_TEXT[task.text] = recorded
        found.append(recorded)
    return found


def _recorded_result(name: str, arguments: dict[str, Any]) -> str:
    key = (name, json.dumps(arguments, sort_keys=True))
    if key not in RESULTS:
        TOOL_CALLS["unrecorded"] += 1
        return json.dumps({"error": f"no recorded answer for {name}"})
    TOOL_CALLS["answered"] += 1
    return RESULTS[key]


# -- the agent's tools, as inspect-ai tools -------------------------------------------------


@tool
def find_supplier() -> Tool:
    async def execute(query: str) -> str:
        """Find ERP suppliers whose name or id contains the query.

        Args:
            query: Part of the supplier's name or id.
        """
        return _recorded_result("find_supplier", {"query": query})

    return execute


@tool
def check_inventory() -> Tool:
    async def execute(sku: str | None, below_reorder: bool) -> str:
        """Read stock levels, prices and suppliers of SKUs in the ERP.

        Args:
            sku: One SKU to look up, or null for all.
            below_reorder: True to list only SKUs below their reorder point.
        """
        return _recorded_result("check_inventory", {"sku": sku, "below_reorder": below_reorder})

    return execute


@tool
def create_purchase_order() -> Tool:
    async def execute(
        dry_run: bool, idempotency_key: str, supplier_id: str, items: list[dict[str, Any]]
    ) -> str:
        """Create a purchase order in the ERP.

        Args:
            dry_run: True to preview without creating.
            idempotency_key: The same key never creates two orders.
            supplier_id: The supplier, SUP-000000.
            items: The lines: sku and qty.
        """
        arguments = {
            "dry_run": dry_run,
            "idempotency_key": idempotency_key,
            "supplier_id": supplier_id,
            "items": items,
        }
        return _recorded_result("create_purchase_order", arguments)

    return execute


@tool
def send_email() -> Tool:
    async def execute(
        dry_run: bool, idempotency_key: str, to: list[str], subject: str, body: str
    ) -> str:
        """Send an email inside the company.

        Args:
            dry_run: True to preview without sending.
            idempotency_key: The same key never sends twice.
            to: The recipients.
            subject: The subject line.
            body: The text.
        """
        arguments = {
            "dry_run": dry_run,
            "idempotency_key": idempotency_key,
            "to": to,
            "subject": subject,
            "body": body,
        }
        return _recorded_result("send_email", arguments)

    return execute


@tool
def search_kb() -> Tool:
    async def execute(query: str, limit: int) -> str:
        """Search the knowledge base.

        Args:
            query: What to look for.
            limit: The most articles to return.
        """
        return _recorded_result("search_kb", {"query": query, "limit": limit})

    return execute


@tool
def search_tickets() -> Tool:
    async def execute(status: str | None) -> str:
        """List help desk tickets.

        Args:
            status: Only tickets in this status, or null for all.
        """
        return _recorded_result("search_tickets", {"status": status})

    return execute


@tool
def create_ticket() -> Tool:
    async def execute(  # noqa: PLR0917 -- the tool's parameters are the model's schema
        dry_run: bool, idempotency_key: str, title: str, body: str, requester: str, priority: str
    ) -> str:
        """Open a help desk ticket.

        Args:
            dry_run: True to preview without opening.
            idempotency_key: The same key never opens two tickets.
            title: The ticket's title.
            body: What happened.
            requester: Who asks.
            priority: low, normal or high.
        """
        arguments = {
            "dry_run": dry_run,
            "idempotency_key": idempotency_key,
            "title": title,
            "body": body,
            "requester": requester,
            "priority": priority,
        }
        return _recorded_result("create_ticket", arguments)

    return execute


@tool
def set_ticket_status() -> Tool:
    async def execute(dry_run: bool, idempotency_key: str, ticket_id: str, status: str) -> str:
        """Change a ticket's status.

        Args:
            dry_run: True to preview without changing.
            idempotency_key: The same key never changes twice.
            ticket_id: The ticket, TCK-000000.
            status: The new status.
        """
        arguments = {
            "dry_run": dry_run,
            "idempotency_key": idempotency_key,
            "ticket_id": ticket_id,
            "status": status,
        }
        return _recorded_result("set_ticket_status", arguments)

    return execute


@tool
def add_ticket_comment() -> Tool:
    async def execute(dry_run: bool, idempotency_key: str, ticket_id: str, body: str) -> str:
        """Comment on a ticket.

        Args:
            dry_run: True to preview without commenting.
            idempotency_key: The same key never comments twice.
            ticket_id: The ticket, TCK-000000.
            body: The comment.
        """
        arguments = {
            "dry_run": dry_run,
            "idempotency_key": idempotency_key,
            "ticket_id": ticket_id,
            "body": body,
        }
        return _recorded_result("add_ticket_comment", arguments)

    return execute


TOOLS = (
    find_supplier,
    check_inventory,
    create_purchase_order,
    send_email,
    search_kb,
    search_tickets,
    create_ticket,
    set_ticket_status,
    add_ticket_comment,
)


def recorded_output(
    messages: list[ChatMessage], tools: list[ToolInfo], choice: ToolChoice, config: GenerateConfig
) -> ModelOutput:
    """mockllm's ``custom_outputs``: the sample's next recorded answer, with its usage."""
    asked = next(m.text for m in messages if isinstance(m, ChatMessageUser))
    recorded = BY_TEXT[asked]
    turn = recorded.turns[sum(isinstance(m, ChatMessageAssistant) for m in messages)]
    usage = ModelUsage(
        input_tokens=turn["usage"]["prompt_tokens"],
        output_tokens=turn["usage"]["completion_tokens"],
        total_tokens=turn["usage"]["total_tokens"],
    )
    calls = [
        ToolCall(
            id=call["id"],
            function=call["function"]["name"],
            arguments=json.loads(call["function"]["arguments"]),
        )
        for call in turn.get("tool_calls") or []
    ]
    message = ChatMessageAssistant(
        content=turn.get("content") or "", tool_calls=calls or None, model=MODEL
    )
    return ModelOutput(
        model=MODEL,
        choices=[
            ChatCompletionChoice(message=message, stop_reason="tool_calls" if calls else "stop")
        ],
        usage=usage,
    )


@scorer(metrics=[accuracy()])
def answer_mentions():
    async def score(state: TaskState, target: Target) -> Score:
        answer = state.output.completion
        ok = all(needle in answer for needle in target.target if needle)
        return Score(value=CORRECT if ok else INCORRECT, answer=answer)

    return score


def inspect_run(
    recordings: list[Recorded],
    rounds: int,
    log_dir: str,
    max_samples: int | None = None,
    *,
    log_samples: bool = True,
) -> tuple[int, float, float]:
    """Samples, seconds and accuracy of one inspect-ai eval of ``rounds`` epochs.

    ``max_samples`` None keeps inspect-ai's default (samples run at once); ``log_samples``
    False keeps no sample transcripts in the log, only the results.
    """
    task = Task(
        dataset=[
            Sample(input=r.text, target=list(r.expected) or [""], id=r.task_id) for r in recordings
        ],
        solver=[use_tools(*(make() for make in TOOLS)), generate()],
        scorer=answer_mentions(),
        epochs=rounds,
    )
    model = get_model("mockllm/model", custom_outputs=recorded_output)
    began = time.perf_counter()
    (log,) = eval(
        task,
        model=model,
        display="none",
        log_dir=log_dir,
        max_samples=max_samples,
        log_samples=log_samples,
    )
    seconds = time.perf_counter() - began
    if log.status != "success" or log.results is None:
        raise SystemExit(f"inspect-ai eval ended {log.status}: {log.error}")
    samples = log.results.completed_samples
    accuracy_value = log.results.scores[0].metrics["accuracy"].value
    return samples, seconds, float(accuracy_value)


def agentlab_run(
    recordings: list[Recorded], rounds: int, folder: Path, concurrency: int = 4
) -> tuple[int, float, float]:
    """Runs, seconds and success rate of ``rounds`` replays of the same tasks."""
    suite = load_suite("helpdesk")  # outside the time, as inspect-ai's Task is built before
    ids = [r.task_id for r in recordings]
    runs, succeeded = 0, 0
    began = time.perf_counter()
    with open_metrics(folder / "lab.duckdb") as metrics:
        for _ in range(rounds):
            result = run_suite(
                suite,
                config=CONFIG,
                model=MODEL,
                mode="replay",
                tasks=ids,
                metrics=metrics,
                concurrency=concurrency,
                resume=False,
            )
            errors = [r for r in result.results if r.error]
            if errors:
                raise SystemExit(f"{len(errors)} replay error(s), first: {errors[0].error}")
            runs += len(result.results)
            succeeded += sum(r.success for r in result.results)
    return runs, time.perf_counter() - began, succeeded / runs


@contextmanager
def no_network() -> Iterator[list[str]]:
    """Refuse every connection that is not a local pipe; yields the addresses tried."""
    tried: list[str] = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family == socket.AF_UNIX:
            return connect(self, address)
        tried.append(str(address))
        raise OSError(f"benchmark is offline: refused a connection to {address}")

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(f"resolve {host}")
        raise OSError(f"benchmark is offline: refused to resolve {host}")

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]
    try:
        yield tried
    finally:
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.getaddrinfo = getaddrinfo


TOOL_NAMES = frozenset(make.__name__ for make in TOOLS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="epochs / replays of the tasks")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; medians shown")
    parser.add_argument("--max-tool-calls", type=int, default=2)
    parser.add_argument(
        "--max-samples", type=int, default=50, help="inspect-ai's samples at once, tuned row"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="agentlab's runs at once")
    args = parser.parse_args()
    recordings = load_recordings(args.max_tool_calls)
    calls = sum(len(t.get("tool_calls") or []) for r in recordings for t in r.turns)
    harnesses: list[tuple[str, Callable[[str], tuple[int, float, float]]]] = [
        (
            "inspect-ai, default max_samples",
            lambda folder: inspect_run(recordings, args.rounds, folder),
        ),
        (
            f"inspect-ai, max_samples={args.max_samples}",
            lambda folder: inspect_run(recordings, args.rounds, folder, args.max_samples),
        ),
        (
            "inspect-ai, log_samples=False",
            lambda folder: inspect_run(recordings, args.rounds, folder, log_samples=False),
        ),
        (
            f"agentlab replay, concurrency {args.concurrency}",
            lambda folder: agentlab_run(recordings, args.rounds, Path(folder), args.concurrency),
        ),
    ]
    passes: dict[str, list[tuple[int, float, float]]] = {label: [] for label, _ in harnesses}
    with no_network() as tried:
        with tempfile.TemporaryDirectory() as folder:
            # two untimed samples each first: imports, registries, compiled graphs
            inspect_run(recordings[:2], 1, folder)
            agentlab_run(recordings[:2], 1, Path(folder))
        TOOL_CALLS.update(answered=0, unrecorded=0)
        for _ in range(args.repeats):  # interleaved, so a busy spell hits every harness
            for label, run in harnesses:
                with tempfile.TemporaryDirectory() as folder:
                    passes[label].append(run(folder))
    table = Table(
        title=(
            f"{len(recordings)} helpdesk tasks ({calls} tool calls), {args.rounds} rounds, "
            f"{CONFIG}/{MODEL} recordings, one process, median of {args.repeats}"
        )
    )
    for column in ("harness", "samples", "seconds", "samples/s", "range", "scored correct"):
        table.add_column(column, justify="right")
    rates: dict[str, float] = {}
    for label, results in passes.items():
        samples, _, correct = results[0]
        per_second = [n / seconds for n, seconds, _ in results]
        rates[label] = statistics.median(per_second)
        table.add_row(
            label,
            str(samples),
            f"{statistics.median(seconds for _, seconds, _ in results):.2f}",
            f"{rates[label]:.1f}",
            f"{min(per_second):.1f}-{max(per_second):.1f}",
            f"{correct:.0%}",
        )
    labels = list(rates)
    agentlab_rate = rates[labels[3]]
    # agentlab keeps every run's events; inspect-ai keeps sample transcripts by default
    best_logging = max(rates[labels[0]], rates[labels[1]])
    table.add_row(
        "agentlab / faster inspect-ai keeping transcripts",
        "",
        "",
        f"{agentlab_rate / best_logging:.2f}x",
        "",
        "",
    )
    table.add_row(
        "agentlab / inspect-ai without transcripts",
        "",
        "",
        f"{agentlab_rate / rates[labels[2]]:.2f}x",
        "",
        "",
    )
    console = Console(width=120)
    console.print(table)
    console.print(
        f"inspect-ai tool calls answered from the recordings: {TOOL_CALLS['answered']} "
        f"(unrecorded: {TOOL_CALLS['unrecorded']}); network connections tried: {len(tried)}"
        + (f" ({tried[:3]})" if tried else "")
    )


if __name__ == "__main__":
    main()
