"""SLOs over the KPIs, with error budgets and burn rates (the article's 6 and 9.3).

An SLO says what a KPI must be over a window: ``success_rate`` at least 0.84 over 7 days,
``p95_latency_s`` at most 25, ``cost_per_run_usd`` at most 0.05, ``safety_violations`` at most
20. A deployment declares them in YAML (``agentlab/ops/slos.yaml`` is the default; a suite
embeds the same model under ``slos:``)::

    slos:
      - {name: helpdesk-success, kpi: success_rate, target: 0.84, window: 7d,
         use_case: helpdesk}
      - {name: latency, kpi: p95_latency_s, target: 25}

The **error budget** is how much badness the target allows, and **budget spent** the share
of it used over the window:

* a rate that must be high (``success_rate``): the allowed bad share is ``1 - target``;
  spent = ``(1 - value) / (1 - target)``. At 0.80 against a 0.90 target, 2.0: spent twice;
* a rate that must be low (``rework_rate``, ``tool_failure_rate``): spent = value / target;
* a quantity per run (``p95_latency_s``, ``cost_per_run_usd``): spent = value / target, so
  the budget is spent exactly when the value passes its target;
* a count (``safety_violations``): the target is how many the window allows; spent = the
  window's count / target.

``error_budget_remaining`` is ``1 - spent`` (negative once overspent). The **burn rate** is
the same ratio for the latest period alone: 1 spends the budget exactly by the window's end,
14.4 spends a 30-day budget in two days. A target that allows nothing (0 violations) makes
any bad value spend it :data:`OVERSPENT` times over.

:func:`evaluate_slos` takes KPI values by name (``agentlab.ops.kpis_of`` makes them from runs;
the lab's metrics use the same names), so the nightly report calls it with tonight's KPIs and
the earlier nights' as ``history``; the gateway calls it per use case before starting a run,
and sends the run to the use case's fallbacks when a budget is spent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from agentlab.core.config import load_yaml_model, parse_yaml_model

KpiName = Literal[
    "success_rate",
    "rework_rate",
    "tool_failure_rate",
    "p50_latency_s",
    "p95_latency_s",
    "cost_per_run_usd",
    "safety_violations",
]
"""The KPIs an SLO can be declared over (``agentlab.ops.kpis_of`` computes each)."""

RATE_KPIS = frozenset({"success_rate", "rework_rate", "tool_failure_rate"})
COUNT_KPIS = frozenset({"safety_violations"})
HIGHER_IS_BETTER = frozenset({"success_rate"})

OVERSPENT = 1000.0
"""The budget ratio reported when a target allows no badness at all and some happened."""

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: object) -> object:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as a timedelta; anything else for pydantic."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])
    return value


Window = Annotated[timedelta, BeforeValidator(_duration)]


class SLO(BaseModel):
    """One service-level objective over one KPI."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: Name
    """How dashboards, reports and run events name it."""
    kpi: KpiName
    """The KPI it is about."""
    target: float = Field(ge=0)
    """The value the KPI must reach (``success_rate``) or stay within (all others)."""
    window: Window = timedelta(days=30)
    """Over how long the KPI is measured: ``30d``, ``24h``, ``90m``, ``2w``."""
    use_case: Name | None = None
    """The use case whose runs it is about; None for every run."""
    min_runs: int = Field(default=10, ge=0)
    """Runs the window must hold before the budget is judged: a single failure is no trend."""
    description: str = ""

    @model_validator(mode="after")
    def _target_fits(self) -> Self:
        if self.kpi in RATE_KPIS and self.target > 1:
            raise ValueError(f"{self.kpi} is a share between 0 and 1; target {self.target} is not")
        if self.window <= timedelta(0):
            raise ValueError("window must be positive, e.g. 30d")
        return self

    @property
    def objective(self) -> Literal["at_least", "at_most"]:
        """``at_least`` for ``success_rate``, ``at_most`` for every other KPI."""
        return "at_least" if self.kpi in HIGHER_IS_BETTER else "at_most"

    def applies_to(self, use_case: str) -> bool:
        """True when runs of ``use_case`` count toward this SLO."""
        return self.use_case is None or self.use_case == use_case

    def spent(self, value: float) -> float:
        """The share of the error budget that ``value`` spends (see the module's doc)."""
        if self.objective == "at_least":
            allowed, bad = 1 - self.target, max(0.0, 1 - value)
        else:
            allowed, bad = self.target, max(0.0, value)
        if allowed <= 0:
            return 0.0 if bad <= 0 else OVERSPENT
        return min(bad / allowed, OVERSPENT)

    def is_met_by(self, value: float) -> bool:
        """True when ``value`` meets the target."""
        return value >= self.target if self.objective == "at_least" else value <= self.target


class SLOSet(BaseModel):
    """The SLOs of a deployment or a suite."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    slos: tuple[SLO, ...] = ()

    @model_validator(mode="after")
    def _names_unique(self) -> Self:
        seen: set[str] = set()
        for slo in self.slos:
            if slo.name in seen:
                raise ValueError(f"two SLOs are named {slo.name!r}; names must be unique")
            seen.add(slo.name)
        return self

    def for_use_case(self, use_case: str) -> SLOSet:
        """The SLOs that runs of ``use_case`` count toward."""
        return SLOSet(slos=tuple(s for s in self.slos if s.applies_to(use_case)))

    @property
    def longest_window(self) -> timedelta:
        """The longest window of any SLO (zero for none): how much history to keep."""
        return max((s.window for s in self.slos), default=timedelta(0))


class SLOStatus(BaseModel):
    """Where one SLO stands: its KPI over the window, and its error budget."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    slo: SLO
    value: float | None
    """The KPI over the window; None when no period had it (no runs, no tool calls)."""
    runs: int | None
    """Runs in the window, when the KPIs said (``runs``); None when they did not."""
    is_met: bool | None
    """True when ``value`` meets the target; None without a value."""
    budget_spent: float | None
    """Share of the error budget spent over the window (1.0 = all of it)."""
    error_budget_remaining: float | None
    """``1 - budget_spent``: 1 untouched, 0 spent, negative overspent."""
    burn_rate: float | None
    """The latest period's spending relative to the pace that lasts the window (1 = on pace)."""
    is_judged: bool
    """True when the window holds at least ``min_runs`` runs (or the KPIs gave no count)."""

    @property
    def is_exhausted(self) -> bool:
        """True when the budget is judged and spent: new runs should take the fallbacks."""
        return self.is_judged and self.budget_spent is not None and self.budget_spent >= 1

    def summary(self) -> str:
        """One line for a run's events, a log or a report."""
        slo = self.slo
        sign = ">=" if slo.objective == "at_least" else "<="
        if self.value is None:
            return f"SLO {slo.name}: {slo.kpi} {sign} {slo.target:g}: no data in the window"
        spent = self.budget_spent or 0.0
        return (
            f"SLO {slo.name}: {slo.kpi} = {self.value:.4g} (target {sign} {slo.target:g}); "
            f"{spent:.0%} of the error budget spent, burn rate {self.burn_rate or 0:.2f}"
        )


def evaluate_slos(
    kpis: Mapping[str, float],
    slos: SLOSet | Iterable[SLO],
    *,
    history: Sequence[Mapping[str, float]] | None = None,
) -> list[SLOStatus]:
    """Each SLO's value, budget and burn rate, from KPIs by name.

    Args:
        kpis: The latest period's KPIs (tonight's suite, the last hour's runs), by the names
            of :data:`KpiName`, plus ``runs`` (how many runs they are over) when known.
        slos: The SLOs to evaluate.
        history: Earlier periods' KPIs inside the SLOs' window, oldest first (earlier nights).
            The window's value pools them with ``kpis``: rates and per-run quantities are
            averaged weighted by ``runs`` (1 each when a period has no ``runs``), counts are
            summed. None: the window is the latest period alone.

    Returns:
        One status per SLO, in the order given.
    """
    periods = [*(history or ()), kpis]
    declared = slos.slos if isinstance(slos, SLOSet) else tuple(slos)
    return [_status(slo, periods, kpis) for slo in declared]


def _status(
    slo: SLO, periods: Sequence[Mapping[str, float]], latest: Mapping[str, float]
) -> SLOStatus:
    has_counts = all("runs" in p for p in periods)
    runs = int(sum(p["runs"] for p in periods)) if has_counts else None
    is_judged = runs is None or runs >= slo.min_runs
    found = [(p[slo.kpi], _weight(p)) for p in periods if slo.kpi in p and _weight(p) > 0]
    if not found:
        return SLOStatus(
            slo=slo,
            value=None,
            runs=runs,
            is_met=None,
            budget_spent=None,
            error_budget_remaining=None,
            burn_rate=None,
            is_judged=is_judged,
        )
    if slo.kpi in COUNT_KPIS:
        value = sum(v for v, _ in found)
    else:
        value = sum(v * w for v, w in found) / sum(w for _, w in found)
    spent = slo.spent(value)
    return SLOStatus(
        slo=slo,
        value=value,
        runs=runs,
        is_met=slo.is_met_by(value),
        budget_spent=spent,
        error_budget_remaining=1 - spent,
        burn_rate=_burn_rate(slo, periods, latest),
        is_judged=is_judged,
    )


def _weight(period: Mapping[str, float]) -> float:
    return float(period.get("runs", 1.0))


def _burn_rate(
    slo: SLO, periods: Sequence[Mapping[str, float]], latest: Mapping[str, float]
) -> float | None:
    if slo.kpi not in latest:
        return None
    if slo.kpi not in COUNT_KPIS:
        return slo.spent(latest[slo.kpi])
    # A count's allowance is for the whole window: the latest period's share of it is its
    # share of the window's runs (or of its periods, without run counts).
    total = sum(_weight(p) for p in periods)
    share = _weight(latest) / total if total > 0 else 1.0
    if share <= 0:
        return 0.0
    return min(slo.spent(latest[slo.kpi]) / share, OVERSPENT)


DEFAULT_SLOS_PATH = Path(__file__).with_name("slos.yaml")


def load_slos(path: str | Path) -> SLOSet:
    """Read and validate an SLO file (a mapping with ``slos:``).

    Raises:
        ConfigError: naming ``file:line`` and the field for every problem found.
    """
    return load_yaml_model(Path(path), SLOSet)


def parse_slos(text: str, *, source: str = "<slos>") -> SLOSet:
    """Validate SLOs from YAML text; errors name ``source`` and the line."""
    return parse_yaml_model(text, SLOSet, path=source)


def default_slos() -> SLOSet:
    """The SLOs the gateway uses unless given others (``agentlab/ops/slos.yaml``)."""
    return load_slos(DEFAULT_SLOS_PATH)
