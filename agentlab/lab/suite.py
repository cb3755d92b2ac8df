"""Golden-run suites: ``golden_runs/<suite>/suite.yaml``, validated with file-and-line errors.

A suite names the world it starts from, the policy its actors live under, the scripted
reviewer that answers approvals, the regression thresholds of ``nightly``, and its tasks. A
task says who asks what, and what a correct run leaves behind (:class:`Expectation`): the
side effects, the world's final diff, checks on the answer, and what must never happen.

``load_suite`` reads the file twice: once for its shape, then again with the suite's policy
and the tool registry at hand, so an unknown tool, actor or use case is reported at its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from agentlab.core.config import parse_yaml_model
from agentlab.core.errors import ConfigError
from agentlab.lab.matchers import check_pattern
from agentlab.ops.slo import SLO
from agentlab.policy import Policy, default_policy, load_policy
from agentlab.policy.model import AutonomyPhase
from agentlab.tools import builtin_tools
from agentlab.world.fixture import WorldFixture, default_world_fixture, load_world_fixture

GOLDEN_RUNS = Path(__file__).parents[2] / "golden_runs"
"""The suites shipped with agentlab (``golden_runs/`` at the repository's root)."""

TaskId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
TaskKind = Literal[
    "read", "ticket", "account", "purchase_order", "mail", "clarify", "injection", "refuse",
    "phase",
]  # fmt: skip
Config = Literal["chat_rag", "single", "multi"]
Problem = tuple[tuple[str | int, ...], str, object]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class SideEffect(_Model):
    """A committed tool call the run must make (``count`` times)."""

    tool: str
    args: dict[str, JsonValue] = Field(default_factory=dict)
    """A pattern (see ``agentlab.lab.matchers``) the call's arguments must match."""
    match: Literal["subset", "exact"] = "subset"
    """``exact``: the arguments are the pattern and nothing else (bookkeeping fields such as
    ``dry_run`` and ``idempotency_key`` aside)."""
    count: int = Field(default=1, ge=1)


class ForbiddenEffect(_Model):
    """A tool call that must never be committed."""

    tool: str
    args: dict[str, JsonValue] = Field(default_factory=dict)


class Forbidden(_Model):
    """What a run must never do, whatever else it gets right.

    Each breach is a safety violation in the metrics.
    """

    effects: tuple[ForbiddenEffect, ...] = ()
    answer_contains: tuple[str, ...] = ()
    """Text that must not reach the requester (case-insensitive)."""
    data_classes: tuple[str, ...] = ()
    """Data classes whose documents' text must not appear in the answer or in a committed
    call's arguments (a leak)."""


class AnswerCheck(_Model):
    """Checks on the run's final answer, all case-insensitive."""

    contains_any: tuple[str, ...] = ()
    contains_all: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    regex: str | None = None
    asks_question: bool | None = None
    """True: the answer is a question back to the requester (ends the run without acting)."""


class CollectionChange(_Model):
    """Expected changes to one world collection; each list must match record for record."""

    added: tuple[JsonValue, ...] = ()
    changed: tuple[JsonValue, ...] = ()
    """Patterns over ``{"id", "before", "after"}`` entries."""
    removed: tuple[JsonValue, ...] = ()


Behaviour = Literal["terse", "impatient", "pushy", "changes_mind_once"]
FactName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Requester(_Model):
    """Who asks in a multi-turn task, what they know and want, and how they behave.

    The agent may ask back; the requester (``agentlab/lab/requester.py``) answers the facts
    asked for, confirms, pushes for ``pushes_for`` when ``pushy``, and ends the conversation
    when the agent is done or after ``max_turns`` agent turns.
    """

    actor: str | None = None
    """Who they are (an actor of the policy); the task's actor if unset."""
    knows: dict[FactName, str | int] = Field(default_factory=dict)
    """Facts they give when asked, e.g. ``asset_tag: LT-0042``."""
    aliases: dict[FactName, tuple[str, ...]] = Field(default_factory=dict)
    """Other words for a fact the agent may use when it asks (``ticket_id: [ticket]``)."""
    missing: tuple[FactName, ...] = ()
    """Facts the opening text leaves out, which the agent must ask for (each is in ``knows``)."""
    wants: str = ""
    """What they are after, in their words: said when the agent asks what they need."""
    behaviour: tuple[Behaviour, ...] = ()
    pushes_for: str | None = None
    """A forbidden thing they try to talk the agent into (with ``pushy``), in their words."""
    changes_mind: dict[FactName, str | int] = Field(default_factory=dict)
    """With ``changes_mind_once``: the facts' new values, given once they were first given."""
    driver: Literal["scripted", "model"] = "scripted"
    """Who plays them: the scripted policy, or the run's model given a description of the
    person (``lab/requester.py``'s ``persona``); a model's turns are recorded in the cassette
    like the agent's calls."""
    max_turns: int = Field(default=6, ge=1, le=20)
    """The agent's turns before the run is stopped."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        unknown = [fact for fact in (*self.missing, *self.changes_mind) if fact not in self.knows]
        if unknown:
            raise ValueError(
                f"facts {', '.join(unknown)} are not in `knows`; say what the requester "
                "answers when asked for each"
            )
        if ("pushy" in self.behaviour) != (self.pushes_for is not None):
            raise ValueError("give `pushes_for:` exactly when the behaviour includes `pushy`")
        if ("changes_mind_once" in self.behaviour) != bool(self.changes_mind):
            raise ValueError(
                "give `changes_mind:` exactly when the behaviour includes `changes_mind_once`"
            )
        return self


class ConversationCheck(_Model):
    """Checks on a multi-turn task's conversation (``agentlab/lab/conversation.py``)."""

    asks_for: tuple[FactName, ...] = ()
    """Facts the agent must ask for before it acts on them."""
    max_turns: int | None = Field(default=None, ge=1)
    """The most agent turns a good run needs."""
    no_assumptions: bool = True
    """No write carries a value for a missing fact the requester had not given yet."""
    refuses_push: bool = True
    """A ``pushy`` requester's forbidden request is not carried out."""


class Expectation(_Model):
    """What a correct run leaves behind. Unset parts are not checked."""

    status: Literal["succeeded", "failed", "any"] = "succeeded"
    side_effects: tuple[SideEffect, ...] | None = None
    """The committed writes, all of them: ``[]`` means none at all."""
    world: dict[str, CollectionChange] | None = None
    """The world's final diff against the fixture, collection by collection; ``{}`` means
    nothing changed, and a collection not named must be unchanged."""
    answer: AnswerCheck | None = None
    forbidden: Forbidden = Forbidden()
    max_tool_calls: int | None = Field(default=None, ge=0)
    judge: bool | None = None
    """Ask the suite's model judge too (None: as the suite's ``judge.kinds`` say)."""
    conversation: ConversationCheck | None = None
    """For a multi-turn task: the questions it must ask, its turns, no acting on guesses."""


class Task(_Model):
    """One request and what a correct run of it leaves behind."""

    id: TaskId
    kind: TaskKind
    text: str = Field(min_length=1)
    actor: str
    use_case: str
    phase: AutonomyPhase | None = None
    """Run this task at a lower autonomy phase than the policy's (0-4)."""
    notes: str = ""
    requester: Requester | None = None
    """Makes the task a conversation: the agent may ask back, and the requester answers."""
    repeats: int = Field(default=1, ge=1, le=20)
    """Runs of this task at least (each with its own seed), for pass^k of multi-turn tasks."""
    expect: Expectation

    @model_validator(mode="after")
    def _conversation_needs_requester(self) -> Self:
        if self.expect.conversation is not None and self.requester is None:
            raise ValueError("`expect.conversation` needs a `requester:` (a multi-turn task)")
        return self


class ReviewRule(_Model):
    """One rule of the scripted reviewer: the first that matches a request decides."""

    tool: str
    args: dict[str, JsonValue] = Field(default_factory=dict)
    decision: Literal["approve", "reject", "edit"]
    edit: dict[str, JsonValue] | None = None
    """For ``edit``: argument values that replace the proposed ones."""
    reason: str = "the suite's scripted reviewer"

    @model_validator(mode="after")
    def _edit_has_edits(self) -> Self:
        if (self.decision == "edit") != (self.edit is not None):
            raise ValueError("give `edit:` values exactly when the decision is `edit`")
        return self


class ReviewerScript(_Model):
    """The suite's stand-in for the human in the loop (its decisions count as rework)."""

    default: Literal["approve", "reject"] = "approve"
    rules: tuple[ReviewRule, ...] = ()


class Judge(_Model):
    """An optional model judge (``agentlab/lab/judge.py``), its calls recorded in the cassettes."""

    model: str = "sim-large"
    """The judge's model: a simulator profile, or a model at the run's endpoint."""
    kinds: tuple[TaskKind, ...] = ()
    """The kinds of task it judges (a task's ``expect.judge`` overrides)."""

    def applies_to(self, task: Task) -> bool:
        """True when ``task`` is judged."""
        if task.expect.judge is not None:
            return task.expect.judge
        return task.kind in self.kinds


class Thresholds(_Model):
    """How much worse than the baseline ``nightly`` tolerates before it fails."""

    task_regressions: int = Field(default=0, ge=0)
    """Tasks that passed in the baseline and fail now."""
    success_rate_drop: float = Field(default=0.02, ge=0, le=1)
    p95_latency_increase: float = Field(default=0.20, ge=0)
    """Relative: 0.2 is 20% slower."""
    cost_per_run_increase: float = Field(default=0.10, ge=0)
    """Relative."""
    safety_violations_increase: int = Field(default=0, ge=0)
    tool_failure_rate_increase: float = Field(default=0.05, ge=0, le=1)


class Suite(_Model):
    """A golden-run suite."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    description: str = ""
    world: str = "default"
    """The world fixture: ``default`` or a YAML file next to ``suite.yaml``."""
    policy: str = "default"
    """The policy: ``default`` or a YAML file next to ``suite.yaml``."""
    configs: tuple[Config, ...] = ("chat_rag", "single", "multi")
    models: tuple[str, ...] = ("sim-large", "sim-small")
    baseline_model: str = "sim-large"
    """The model whose recordings a candidate is compared with (``upgrade``)."""
    seed: int = 0
    reviewer: ReviewerScript = ReviewerScript()
    judge: Judge | None = None
    thresholds: Thresholds = Thresholds()
    tool_costs_usd: dict[str, float] = Field(default_factory=dict)
    """What one committed call of a tool is billed (an RPA bot's run, a paid API), added to
    the run's cost; tools not named cost nothing."""
    slos: tuple[SLO, ...] = ()
    """Service-level objectives over the KPIs (``agentlab/ops/slo.py``); ``nightly`` shows
    each one's error budget and burn rate for every configuration and model."""
    tasks: tuple[Task, ...] = Field(min_length=1)

    folder: Path | None = Field(default=None, exclude=True)
    """Where the suite was read from (set by ``load_suite``)."""

    @model_validator(mode="after")
    def _tasks_make_sense(self, info: ValidationInfo) -> Self:
        problems: list[Problem] = []
        seen: set[str] = set()
        for index, task in enumerate(self.tasks):
            if task.id in seen:
                problems.append((("tasks", index, "id"), f"task id {task.id} appears twice", task))
            seen.add(task.id)
        problems += _pattern_problems(self)
        problems += _requester_problems(self)
        context = info.context if isinstance(info.context, Mapping) else {}
        if "policy" in context:
            problems += _reference_problems(self, context["policy"], set(context["tools"]))
        folder = context.get("folder")
        if folder is not None and self.world != "default" and not (folder / self.world).is_file():
            problems.append(
                (
                    ("world",),
                    f"world fixture {self.world!r} not found at {folder / self.world}; name a "
                    "YAML file next to suite.yaml, or use `world: default`",
                    self.world,
                )
            )
        if problems:
            raise ValidationError.from_exception_data(
                "Suite",
                [
                    InitErrorDetails(type=PydanticCustomError("suite", m), loc=loc, input=v)
                    for loc, m, v in problems
                ],
            )
        return self

    def task(self, task_id: str) -> Task:
        """The task called ``task_id``.

        Raises:
            ConfigError: no such task (the message lists a few that exist).
        """
        for task in self.tasks:
            if task.id == task_id:
                return task
        known = ", ".join(t.id for t in self.tasks[:8])
        raise ConfigError(f"suite {self.name!r} has no task {task_id!r}; it has {known}, ...")

    @cached_property
    def world_fixture(self) -> WorldFixture:
        """The world the suite's runs start from."""
        if self.world == "default":
            return default_world_fixture()
        return load_world_fixture(self._relative(self.world))

    @property
    def world_fixture_path(self) -> Path | None:
        """The fixture's file, or None for the embedded default."""
        return None if self.world == "default" else self._relative(self.world)

    @cached_property
    def loaded_policy(self) -> Policy:
        """The policy the suite's actors live under."""
        return _policy_of(self.policy, self.folder)

    def _relative(self, name: str) -> Path:
        return (self.folder or Path.cwd()) / name


def _policy_of(name: str, folder: Path | None) -> Policy:
    if name == "default":
        return default_policy()
    return load_policy((folder or Path.cwd()) / name)


def _requester_problems(suite: Suite) -> list[Problem]:
    """Requester sections that load but cannot mean what they say."""
    problems: list[Problem] = []
    for index, task in enumerate(suite.tasks):
        who = task.requester
        if who is None:
            continue
        at: tuple[str | int, ...] = ("tasks", index, "requester")
        if not (who.knows or who.wants or who.behaviour):
            problems.append(
                (
                    at,
                    "the requester has nothing to say: give `knows:` (the facts they answer "
                    "with), `wants:` or `behaviour:`",
                    {},
                )
            )
        for fact in who.aliases:
            if fact not in who.knows:
                problems.append(
                    (
                        (*at, "aliases", fact),
                        f"aliases for {fact}, which is not in `knows`; add {fact} to `knows` "
                        "or drop its aliases",
                        fact,
                    )
                )
        for fact, value in who.changes_mind.items():
            if fact in who.knows and str(value) == str(who.knows[fact]):
                problems.append(
                    (
                        (*at, "changes_mind", fact),
                        f"changes_mind gives {fact} the value it has in `knows` ({value!r}); "
                        "give the value they change their mind to",
                        value,
                    )
                )
        check = task.expect.conversation
        for n, fact in enumerate(check.asks_for if check is not None else ()):
            if fact not in who.knows:
                problems.append(
                    (
                        ("tasks", index, "expect", "conversation", "asks_for", n),
                        f"asks_for names {fact}, which the requester does not know; add "
                        f"{fact} to `requester.knows` (and to `missing` if the text leaves it out)",
                        fact,
                    )
                )
    return problems


def _pattern_problems(suite: Suite) -> list[Problem]:
    problems: list[Problem] = []
    for index, task in enumerate(suite.tasks):
        expect = task.expect
        base: tuple[str | int, ...] = ("tasks", index, "expect")
        patterns: list[tuple[tuple[str | int, ...], Any]] = []
        for n, effect in enumerate(expect.side_effects or ()):
            patterns.append(((*base, "side_effects", n, "args"), effect.args))
        for n, forbidden in enumerate(expect.forbidden.effects):
            patterns.append(((*base, "forbidden", "effects", n, "args"), forbidden.args))
        for collection, change in (expect.world or {}).items():
            for part in ("added", "changed", "removed"):
                for n, record in enumerate(getattr(change, part)):
                    patterns.append(((*base, "world", collection, part, n), record))
        for loc, pattern in patterns:
            problems += [(loc, why, pattern) for why in check_pattern(pattern, "pattern")]
    for n, rule in enumerate(suite.reviewer.rules):
        loc = ("reviewer", "rules", n, "args")
        problems += [(loc, why, rule.args) for why in check_pattern(rule.args, "pattern")]
    return problems


def _reference_problems(suite: Suite, policy: Policy, tools: set[str]) -> list[Problem]:
    """Unknown tools, actors and use cases, each at its own location."""
    problems: list[Problem] = []
    known_tools = ", ".join(sorted(tools))

    def tool(loc: tuple[str | int, ...], name: str) -> None:
        if name not in tools:
            problems.append((loc, f"unknown tool {name!r}; known tools: {known_tools}", name))

    for index, task in enumerate(suite.tasks):
        base: tuple[str | int, ...] = ("tasks", index)
        if task.actor not in policy.actors:
            known = ", ".join(sorted(policy.actors))
            problems.append(
                ((*base, "actor"), f"actor {task.actor!r} is not in the policy ({known})", task)
            )
        if task.use_case not in policy.use_cases:
            known = ", ".join(sorted(policy.use_cases))
            message = f"use case {task.use_case!r} is not in the policy ({known})"
            problems.append(((*base, "use_case"), message, task))
        requester = task.requester
        if requester is not None and requester.actor not in (None, *policy.actors):
            known = ", ".join(sorted(policy.actors))
            message = f"actor {requester.actor!r} is not in the policy ({known})"
            problems.append(((*base, "requester", "actor"), message, requester.actor))
        for n, effect in enumerate(task.expect.side_effects or ()):
            tool((*base, "expect", "side_effects", n, "tool"), effect.tool)
        for n, forbidden in enumerate(task.expect.forbidden.effects):
            tool((*base, "expect", "forbidden", "effects", n, "tool"), forbidden.tool)
    for n, rule in enumerate(suite.reviewer.rules):
        tool(("reviewer", "rules", n, "tool"), rule.tool)
    for name, cost in suite.tool_costs_usd.items():
        tool(("tool_costs_usd", name), name)
        if cost < 0:
            problems.append((("tool_costs_usd", name), f"a cost is never negative: {cost}", cost))
    return problems


def suite_path(name_or_path: str | Path) -> Path:
    """The ``suite.yaml`` meant by a suite's name (``helpdesk``), folder, or file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        return path / "suite.yaml"
    shipped = GOLDEN_RUNS / str(name_or_path) / "suite.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.parent.name for p in GOLDEN_RUNS.glob("*/suite.yaml"))
    raise ConfigError(
        f"no suite {str(name_or_path)!r}: not a file, a folder, or a shipped suite",
        hint=f"shipped suites: {', '.join(known) or 'none'}; or pass a path to suite.yaml",
    )


def load_suite(name_or_path: str | Path) -> Suite:
    """Read and validate a suite.

    Raises:
        ConfigError: naming ``file:line`` and the field for every problem found, including
            unknown tools, actors and use cases.
    """
    path = suite_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    shape = parse_yaml_model(text, Suite, path=path)
    policy = _policy_of(shape.policy, path.parent)
    context = {
        "policy": policy,
        "tools": [spec.name for spec in builtin_tools()],
        "folder": path.parent,
    }
    suite = parse_yaml_model(text, Suite, path=path, context=context)
    return suite.model_copy(update={"folder": path.parent})
