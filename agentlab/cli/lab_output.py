"""How comparisons and regressions look in a terminal (shared by ``compare`` and ``nightly``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from agentlab.cli._console import console
from agentlab.lab.compare import Comparison, Regression, TaskDiff
from agentlab.lab.conversation import MultiTurnPassK, format_multi_turn


def show_comparison(comparison: Comparison) -> None:
    """Per-metric deltas with their 95% intervals, pass^k, then the tasks that differ."""
    table = Table(
        title=f"{comparison.candidate_label}  vs  {comparison.baseline_label}",
        title_justify="left",
    )
    for column in ("measure", "baseline", "candidate", "change", "95% CI"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for m in comparison.metrics:
        mark = ""
        if m.is_significant:
            mark = " [red]worse[/red]" if m.is_worse else " [green]better[/green]"
        table.add_row(
            m.label,
            _num(m.baseline),
            _num(m.candidate),
            f"{m.delta:+.4g}{mark}",
            f"{m.ci_low:+.4g} .. {m.ci_high:+.4g}",
        )
    console.print(table)
    repeated = [p for p in comparison.pass_k if p.k > 1]
    if repeated:
        passes = Table(title="pass^k (all k runs pass) and pass@k", title_justify="left")
        for column in ("k", "tasks", "baseline pass^k", "candidate pass^k", "candidate pass@k"):
            passes.add_column(column, justify="right")
        for p in comparison.pass_k:
            passes.add_row(
                str(p.k),
                str(p.tasks),
                _num(p.baseline_pass_hat_k),
                _num(p.candidate_pass_hat_k),
                _num(p.candidate_pass_at_k),
            )
        console.print(passes)
    differing = [
        t for t in comparison.tasks if t.has_effect_diff or t.status in ("regressed", "fixed")
    ]
    if differing:
        console.print(f"[bold]{len(differing)} task(s) differ[/bold]")
        for task in differing:
            show_task_diff(task)


def show_task_diff(task: TaskDiff, indent: str = "  ") -> None:
    """One task's outcome on both sides, its failing checks and its side-effect diff."""
    console.print(
        f"{indent}{task.task_id} [{task.status}] passed {task.baseline_passed}/"
        f"{task.baseline_runs} -> {task.candidate_passed}/{task.candidate_runs}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    lines = [f"check {c.name}: {c.detail}" for c in task.failing_checks]
    lines += [f"+ {w.tool} {w.arguments}" for w in task.added]
    lines += [f"- {w.tool} {w.arguments}" for w in task.removed]
    lines += [
        f"~ {c.tool} {field}: {c.before.get(field)!r} -> {c.after.get(field)!r}"
        for c in task.changed
        for field in c.fields
    ]
    lines += [f"{d.kind} {d.target} {d.method} {d.path} {d.summary}" for d in task.divergences]
    if task.error:
        lines.append(f"error: {task.error}")
    for line in lines:
        console.print(f"{indent}    {line}", highlight=False, markup=False, soft_wrap=True)


def show_regressions(found: Sequence[Regression]) -> None:
    """Each regression on its own line, a task's diff under it."""
    if not found:
        console.print("[green]no regressions[/green]")
        return
    console.print(f"[bold red]{len(found)} regression(s)[/bold red]")
    for regression in found:
        console.print(f"  {regression.message}", highlight=False, markup=False, soft_wrap=True)
        if regression.task is not None:
            show_task_diff(regression.task, indent="    ")


def show_multi_turn(rows: Sequence[MultiTurnPassK]) -> None:
    """pass^1 next to pass^k of the multi-turn tasks, per configuration x model."""
    if rows:
        console.print(format_multi_turn(rows), highlight=False, markup=False, soft_wrap=True)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
