"""The nightly report: one self-contained HTML file, readable offline.

What a person needs first comes first: whether the model is the simulator, the regressions
(each a link to its task's section), the KPI table, the comparisons with the baseline, the
trends across past nightlies, the success / P95 / cost trade-off, and every failed task with
its failing checks and its side-effect diff. plotly.js is embedded once; nothing is fetched
when the file is opened. Every text that came from a run (answers, check details, tool
arguments) is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from agentlab.lab.compare import (
    METRICS,
    Comparison,
    Regression,
    TaskDiff,
    format_value,
    metric_anchor,
    task_anchor,
)
from agentlab.lab.metrics.table import (
    CONFIG_LABELS,
    config_label,
    format_number,
    format_rate,
    format_seconds,
    format_usd,
)
from agentlab.lab.results import RunResult, SideEffectRecord
from agentlab.ops.slo import SLOStatus
from agentlab.report.figures import kpi_figure, tradeoff_figure, trend_figure

SIMULATOR_PREFIX = "sim-"
"""Models whose name starts so are agentlab's offline simulator."""
_ANSWER_CHARS = 600
_METRIC_LABELS = {spec.name: spec.label for spec in METRICS}


class _Html(str):
    """Text that is HTML already: the builders below never escape it again."""

    __slots__ = ()


def _e(value: object) -> _Html:
    if isinstance(value, _Html):
        return value
    return _Html(html.escape("" if value is None else str(value), quote=True))


def _join(parts: Iterable[str]) -> _Html:
    return _Html("".join(parts))


def _tag(name: str, body: object = "", **attrs: object) -> _Html:
    rendered = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{_e(value)}"'
        for key, value in attrs.items()
        if value is not None
    )
    return _Html(f"<{name}{rendered}>{_e(body)}</{name}>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], **attrs: object) -> _Html:
    head = _tag("thead", _tag("tr", _join(_tag("th", h) for h in headers)))
    body = _tag(
        "tbody",
        _join(
            _tag("tr", _join(_tag("td", cell) for cell in row))
            if not isinstance(row, _Row)
            else _tag("tr", _join(_tag("td", cell) for cell in row.cells), class_=row.css)
            for row in rows
        ),
    )
    return _tag("table", _join([head, body]), **attrs)


@dataclass(frozen=True)
class _Row:
    cells: Sequence[object]
    css: str | None = None


def build_nightly_report(
    *,
    kpis: pd.DataFrame,
    comparisons: Comparison | Sequence[Comparison] = (),
    regressions: Sequence[Regression] = (),
    history: pd.DataFrame | None = None,
    failed_runs: Sequence[RunResult] = (),
    slos: Sequence[tuple[str, Sequence[SLOStatus]]] = (),
    title: str = "agentlab nightly",
    generated_at: datetime | None = None,
) -> str:
    """The nightly report as one HTML document (see :func:`write_nightly_report`)."""
    comparisons = [comparisons] if isinstance(comparisons, Comparison) else list(comparisons)
    failures = _failures(failed_runs, comparisons, regressions)
    anchors = {f.anchor for f in failures} | {metric_anchor(c.config, c.model) for c in comparisons}
    charts = _charts(kpis, history)
    models = sorted(
        {str(m) for m in kpis.get("model", pd.Series(dtype=str))}
        | {c.model for c in comparisons}
        | {c.baseline_model for c in comparisons}
        | {r.model for r in failed_runs}
    )
    suites = sorted(
        {str(s) for s in kpis.get("suite", pd.Series(dtype=str))} | {c.suite for c in comparisons}
    )
    body = _join(
        [
            _header(title, suites, models, generated_at),
            _tag(
                "main",
                _join(
                    [
                        _regressions(regressions, anchors),
                        _kpi_section(kpis),
                        _slo_section(slos),
                        _comparisons(comparisons),
                        charts,
                        _failures_section(failures),
                    ]
                ),
            ),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body>{body}</body></html>\n"
    )


def write_nightly_report(
    path: str | Path,
    *,
    kpis: pd.DataFrame,
    comparisons: Comparison | Sequence[Comparison] = (),
    regressions: Sequence[Regression] = (),
    history: pd.DataFrame | None = None,
    failed_runs: Sequence[RunResult] = (),
    slos: Sequence[tuple[str, Sequence[SLOStatus]]] = (),
    title: str = "agentlab nightly",
    generated_at: datetime | None = None,
) -> Path:
    """Write the nightly report to ``path`` (its folder is created) and return the path.

    Args:
        path: The HTML file to write, e.g. ``reports/nightly-2026-01-01.html``.
        kpis: Tonight's rows of the ``kpis`` view, one per configuration and model.
        comparisons: Tonight's comparisons with the baselines (``compare``), one or several.
        regressions: What ``nightly`` fails on (``regressions``); shown first.
        history: The ``kpis`` rows of past nightlies (tonight's too) for the trend charts.
        failed_runs: Tonight's runs that did not pass; each task gets a section.
        slos: Each configuration x model's SLO statuses (``run_nightly``'s ``slos``): the
            error budget left and the burn rate of each.
        title: The page's title.
        generated_at: When the report was made (from the caller's Clock), shown in the header.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = build_nightly_report(
        kpis=kpis,
        comparisons=comparisons,
        regressions=regressions,
        history=history,
        failed_runs=failed_runs,
        slos=slos,
        title=title,
        generated_at=generated_at,
    )
    target.write_text(document, encoding="utf-8")
    return target


# --- header, regressions, KPIs ---------------------------------------------------------------


def _slo_section(slos: Sequence[tuple[str, Sequence[SLOStatus]]]) -> _Html:
    """Each SLO's value, target, error budget left and burn rate, per configuration x model."""
    rows = []
    for label, statuses in slos:
        for status in statuses:
            slo = status.slo
            sign = ">=" if slo.objective == "at_least" else "<="
            left = status.error_budget_remaining
            rows.append(
                _Row(
                    [
                        label,
                        slo.name,
                        f"{slo.kpi} {sign} {slo.target:g}",
                        "-" if status.value is None else f"{status.value:.4g}",
                        "-" if left is None else f"{left:.0%}",
                        "-" if status.burn_rate is None else f"{status.burn_rate:.2f}",
                        "spent" if status.is_exhausted else ("met" if status.is_met else "missed"),
                    ],
                    css="spent" if status.is_exhausted else None,
                )
            )
    if not rows:
        return _Html("")
    headers = ["runs of", "SLO", "objective", "value", "error budget left", "burn rate", ""]
    return _join(
        [
            _tag("h2", "SLOs and error budgets", id="slos"),
            _table(headers, rows, class_="slos"),
            _tag(
                "p",
                "The window pools tonight with the earlier nightlies inside each SLO's window; "
                "a burn rate of 1 spends the budget exactly by the window's end.",
                class_="note",
            ),
        ]
    )


def _header(
    title: str, suites: Sequence[str], models: Sequence[str], generated_at: datetime | None
) -> _Html:
    simulated = [m for m in models if m.startswith(SIMULATOR_PREFIX)]
    lines = [_tag("h1", title)]
    facts = []
    if suites:
        facts.append(f"suite {', '.join(suites)}")
    if models:
        facts.append(f"model {', '.join(models)}")
    if generated_at is not None:
        facts.append(f"generated {generated_at.isoformat(timespec='seconds')}")
    if facts:
        lines.append(_tag("p", " · ".join(facts), class_="facts"))
    if simulated:
        lines.append(
            _tag(
                "p",
                f"Model {', '.join(simulated)}: agentlab's offline simulator, not a vendor's "
                "model. These numbers compare configurations and code, not real models.",
                class_="simulator",
                role="note",
            )
        )
    return _tag("header", _join(lines))


def _regressions(regressions: Sequence[Regression], anchors: set[str]) -> _Html:
    if not regressions:
        return _tag(
            "section",
            _join(
                [
                    _tag("h2", "No regressions"),
                    _tag("p", "Every measure is within the suite's thresholds."),
                ]
            ),
            id="regressions",
            class_="ok",
        )
    items = []
    for regression in regressions:
        target = regression.anchor if regression.anchor in anchors else "kpis"
        what = (
            f"task {regression.name}"
            if regression.kind == "task"
            else _METRIC_LABELS.get(regression.name, regression.name)
        )
        link = _tag("a", f"{what} ({regression.config}, {regression.model})", href=f"#{target}")
        items.append(_tag("li", _join([link, _tag("p", regression.message)])))
    return _tag(
        "section",
        _join(
            [
                _tag("h2", f"Regressions ({len(regressions)})"),
                _tag("ol", _join(items)),
            ]
        ),
        id="regressions",
        class_="failed",
    )


def _kpi_section(kpis: pd.DataFrame) -> _Html:
    headers = [
        "configuration", "model", "mode", "runs", "P50", "P95", "success rate", "rework rate",
        "average tool calls", "external calls / run (dry-runs, blocked)", "tool failure rate",
        "safety violations (forbidden effects)", "cost per run",
    ]  # fmt: skip
    rows = []
    if not kpis.empty:
        order = {config: i for i, config in enumerate(CONFIG_LABELS)}
        ordered = kpis.assign(_o=kpis["config"].map(lambda c: order.get(c, len(order))))
        for _, row in ordered.sort_values(["_o", "config", "model"], kind="stable").iterrows():
            rows.append(
                [
                    config_label(str(row["config"])),
                    row["model"],
                    row["mode"],
                    int(row["runs"]),
                    format_seconds(_ms_to_s(row["p50_latency_ms"])),
                    format_seconds(_ms_to_s(row["p95_latency_ms"])),
                    format_rate(row["success_rate"]),
                    format_rate(row["rework_rate"]),
                    format_number(row["avg_tool_calls"]),
                    f"{format_number(row['external_calls'])} ({format_number(row['dry_runs'])}, "
                    f"{format_number(row['blocked_calls'])})",
                    format_rate(row["tool_failure_rate"]),
                    f"{_count(row['safety_violations'])} ({_count(row['forbidden_effects'])})",
                    format_usd(row["cost_per_run"]),
                ]
            )
    note = _tag(
        "p",
        "Safety violations: policy blocks plus forbidden effects that happened (those alone in "
        "brackets); "
        "P50 and P95 are of run wall time (in replay, the recorded times).",
        class_="note",
    )
    return _tag(
        "section",
        _join(
            [
                _tag("h2", "KPIs"),
                _tag("div", _table(headers, rows, class_="kpis"), class_="scroll"),
                note,
            ]
        ),
        id="kpis",
    )


def _comparisons(comparisons: Sequence[Comparison]) -> _Html:
    if not comparisons:
        return _Html("")
    parts = [_tag("h2", "Against the baseline")]
    for c in comparisons:
        rows = [
            _Row(
                [
                    m.label,
                    format_value(m.unit, m.baseline),
                    format_value(m.unit, m.candidate),
                    format_value(m.unit, m.delta, signed=True),
                    f"{format_value(m.unit, m.ci_low, signed=True)} .. "
                    f"{format_value(m.unit, m.ci_high, signed=True)}",
                ],
                css="worse" if m.is_worse and m.is_significant else None,
            )
            for m in c.metrics
        ]
        statuses = pd.Series([t.status for t in c.tasks]).value_counts()
        summary = ", ".join(f"{n} {status}" for status, n in statuses.items())
        pass_rows = [
            [
                p.k,
                p.tasks,
                format_value("rate", p.baseline_pass_hat_k),
                format_value("rate", p.candidate_pass_hat_k),
                format_value("rate", p.baseline_pass_at_k),
                format_value("rate", p.candidate_pass_at_k),
            ]
            for p in c.pass_k
        ]
        parts.append(
            _tag(
                "div",
                _join(
                    [
                        _tag("h3", f"{c.candidate_label} against {c.baseline_label}"),
                        _tag(
                            "p",
                            f"{c.candidate_runs} runs against {c.baseline_runs}; tasks: "
                            f"{summary}. Intervals: 95% bootstrap over tasks, paired, "
                            f"{c.n_boot} resamples, seed {c.seed}.",
                            class_="note",
                        ),
                        _table(
                            ["measure", "baseline", "now", "change", "95% interval"],
                            rows,
                            class_="deltas",
                        ),
                        _table(
                            [
                                "k",
                                "tasks",
                                "pass^k before",
                                "pass^k now",
                                "pass@k before",
                                "pass@k now",
                            ],
                            pass_rows,
                            class_="passk",
                        ),
                        _tag(
                            "p",
                            "pass^k and pass@k average over the tasks run at least k times "
                            "now (tasks): for k > 1, only the tasks with their own `repeats` "
                            "(the multi-turn tasks), not the whole suite.",
                            class_="note",
                        ),
                    ]
                ),
                id=metric_anchor(c.config, c.model),
                class_="comparison",
            )
        )
    return _tag("section", _join(parts), id="comparisons")


# --- charts ----------------------------------------------------------------------------------


def _charts(kpis: pd.DataFrame, history: pd.DataFrame | None) -> _Html:
    figures: list[tuple[str, go.Figure]] = []
    if history is not None and not history.empty:
        figures.append(("chart-trend", trend_figure(history)))
    if not kpis.empty:
        figures.append(("chart-tradeoff", tradeoff_figure(kpis)))
        figures.append(("chart-kpis", kpi_figure(kpis)))
    if not figures:
        return _Html("")
    divs = [
        _Html(
            '<div class="chart">'
            + pio.to_html(
                figure,
                include_plotlyjs=False,
                full_html=False,
                div_id=div_id,
                config={"displaylogo": False, "responsive": True},
            )
            + "</div>"
        )
        for div_id, figure in figures
    ]
    return _tag("section", _join([_tag("h2", "Charts"), *divs]), id="charts")


# --- failed tasks ----------------------------------------------------------------------------


@dataclass
class _Failure:
    config: str
    model: str
    task_id: str
    runs: list[RunResult] = field(default_factory=list)
    diff: TaskDiff | None = None
    is_regression: bool = False

    @property
    def anchor(self) -> str:
        return task_anchor(self.config, self.model, self.task_id)


def _failures(
    failed_runs: Sequence[RunResult],
    comparisons: Sequence[Comparison],
    regressions: Sequence[Regression],
) -> list[_Failure]:
    found: dict[tuple[str, str, str], _Failure] = {}
    for run in failed_runs:
        key = (run.config, run.model, run.task_id)
        found.setdefault(key, _Failure(*key)).runs.append(run)
    diffs = {
        (c.config, c.model, t.task_id): t
        for c in comparisons
        for t in c.tasks
        if t.status in ("regressed", "failing", "new") or t.has_effect_diff
    }
    for key, failure in found.items():
        failure.diff = diffs.get(key)
    for regression in regressions:
        if regression.kind != "task":
            continue
        key = (regression.config, regression.model, regression.name)
        failure = found.setdefault(key, _Failure(*key))
        failure.is_regression = True
        failure.diff = regression.task or failure.diff
    order = {config: i for i, config in enumerate(CONFIG_LABELS)}
    return sorted(
        found.values(),
        key=lambda f: (not f.is_regression, order.get(f.config, len(order)), f.model, f.task_id),
    )


def _failures_section(failures: Sequence[_Failure]) -> _Html:
    if not failures:
        return _tag(
            "section",
            _join([_tag("h2", "Failed tasks (0)"), _tag("p", "Every task passed.")]),
            id="failures",
        )
    return _tag(
        "section",
        _join([_tag("h2", f"Failed tasks ({len(failures)})"), *map(_failure, failures)]),
        id="failures",
    )


def _failure(failure: _Failure) -> _Html:
    runs = sorted(failure.runs, key=lambda r: r.repetition)
    diff = failure.diff
    shown = next(
        (r for r in runs if diff is not None and r.repetition == diff.candidate_repetition),
        runs[0] if runs else None,
    )
    heading = f"{failure.task_id} · {config_label(failure.config)} · {failure.model}"
    parts = [_tag("h3", heading)]
    badges = []
    if failure.is_regression:
        badges.append(_tag("span", "regression", class_="badge failed"))
    if shown is not None:
        badges.append(_tag("span", shown.kind, class_="badge"))
    if diff is not None:
        badges.append(
            _tag(
                "span",
                f"passed {diff.baseline_passed}/{diff.baseline_runs} before, "
                f"{diff.candidate_passed}/{diff.candidate_runs} now",
                class_="badge",
            )
        )
    elif runs:
        badges.append(_tag("span", f"{len(runs)} failed run(s)", class_="badge"))
    parts.append(_tag("p", _join(badges)))
    checks = (list(diff.failing_checks) if diff is not None and diff.failing_checks else []) or (
        shown.failed_checks if shown is not None else []
    )
    if checks:
        parts.append(_tag("h4", "Failing checks"))
        parts.append(
            _tag(
                "ul",
                _join(
                    _tag(
                        "li", _join([_tag("code", c.name), _e(": " + c.detail if c.detail else "")])
                    )
                    for c in checks
                ),
                class_="checks",
            )
        )
    error = shown.error if shown is not None else (diff.error if diff is not None else None)
    if error:
        parts.append(_tag("p", f"The run could not be carried out: {error}", class_="error"))
    parts.append(_tag("h4", "Side-effect diff"))
    parts.append(_effects(diff, shown))
    if shown is not None and shown.answer:
        answer = shown.answer
        if len(answer) > _ANSWER_CHARS:
            answer = answer[:_ANSWER_CHARS] + "…"
        parts.append(_tag("h4", "Answer"))
        parts.append(_tag("blockquote", answer))
    return _tag("article", _join(parts), id=failure.anchor, class_="task")


def _effects(diff: TaskDiff | None, run: RunResult | None) -> _Html:
    rows: list[_Row] = []
    if diff is not None:
        rows += [_Row(["added", call.tool, _args(call.arguments)], "added") for call in diff.added]
        rows += [
            _Row(["removed", call.tool, _args(call.arguments)], "removed") for call in diff.removed
        ]
        rows += [
            _Row(
                [
                    "changed",
                    change.tool,
                    _join(
                        [
                            _tag("div", _join([_tag("b", "before "), _args(change.before)])),
                            _tag("div", _join([_tag("b", "after "), _args(change.after)])),
                            _tag("div", "fields: " + ", ".join(change.fields), class_="note"),
                        ]
                    ),
                ],
                "changed",
            )
            for change in diff.changed
        ]
    divergences = diff.divergences if diff is not None else (run.divergences if run else ())
    rows += [
        _Row(
            [
                f"diverged ({d.kind})",
                f"{d.target} {d.method} {d.path}",
                d.summary + (" — a write" if d.is_write else ""),
            ],
            "diverged",
        )
        for d in divergences
    ]
    parts = []
    if rows:
        parts.append(_table(["", "tool", "arguments"], rows, class_="effects"))
    elif diff is not None:
        parts.append(_tag("p", "The committed writes are the same as the baseline's."))
    if diff is None and run is not None:
        parts.append(_tag("p", "No baseline to diff against; the run's committed writes:"))
        parts.append(_writes(run.side_effects))
    return _join(parts)


def _writes(calls: Sequence[SideEffectRecord]) -> _Html:
    if not calls:
        return _tag("p", "none", class_="note")
    return _table(
        ["tool", "arguments"], [[c.tool, _args(c.arguments)] for c in calls], class_="effects"
    )


def _args(arguments: object) -> _Html:
    return _tag("code", json.dumps(arguments, ensure_ascii=False, sort_keys=True))


# --- formatting ------------------------------------------------------------------------------


def _ms_to_s(value: object) -> float | None:
    try:
        return float(value) / 1000  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _count(value: object) -> str:
    try:
        return str(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "-"


_CSS = """
:root { --fg: #1c2833; --muted: #5d6d7e; --bad: #c0392b; --good: #1e8449; --line: #d5d8dc; }
tr.spent td { color: var(--bad); font-weight: 600; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); margin: 0; }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 16px; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; } h2 { margin-top: 32px; } h3 { margin-bottom: 4px; }
.facts, .note { color: var(--muted); }
.simulator { background: #fef5e7; border-left: 4px solid #e67e22; padding: 8px 12px; }
#regressions.failed h2 { color: var(--bad); } #regressions.ok h2 { color: var(--good); }
#regressions li p { margin: 2px 0 10px; font-family: ui-monospace, monospace; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
         vertical-align: top; }
table.kpis td:nth-child(n+4), table.deltas td:nth-child(n+2) { text-align: right; }
tr.worse td, tr.removed td:first-child, tr.added td:first-child { color: var(--bad); }
tr.diverged td:first-child, tr.changed td:first-child { color: #b9770e; }
code { font: 13px ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; }
.chart { margin: 16px 0; }
.scroll { overflow-x: auto; }
table.kpis { font-size: 13px; } table.kpis td { white-space: nowrap; }
article.task { border-top: 1px solid var(--line); padding: 8px 0 16px; }
[id] { scroll-margin-top: 12px; }
.badge { display: inline-block; border: 1px solid var(--line); border-radius: 10px;
         padding: 0 8px; margin-right: 6px; font-size: 13px; }
.badge.failed { border-color: var(--bad); color: var(--bad); }
.error { color: var(--bad); }
blockquote { margin: 0; padding: 4px 12px; border-left: 3px solid var(--line);
             white-space: pre-wrap; }
"""
