"""AgentDojo's suites inside agentlab: its tasks, run by agentlab's agents, graded by AgentDojo.

AgentDojo (Debenedetti et al., 2024; the ``agentdojo`` package, ``pip install
'agentlab[agentdojo]'``) ships four environments -- workspace, travel, banking, slack --
with user tasks, injection tasks, and checks that need no model: a user task's ``utility``
and an injection task's ``security`` look at the environment before and after a run.

The adapter makes each suite an agentlab workload:

* every AgentDojo function becomes a governed tool (:func:`agentdojo_tools`): its JSON Schema
  comes from the function's pydantic parameters, its docstring is the description, and a
  function that changes the environment is a write -- previewed on a copy of the
  environment (the dry-run and its diff), approved by policy, then committed on the real
  one. The executor's whole pipeline, and the policy's defences, apply;
* a run (:func:`arun_dojo_task`) loads the suite's environment with the attack's injections
  in place, runs one of agentlab's configurations (``single``, ``multi``) on the user task,
  and grades the final environment with AgentDojo's own ``utility`` (and, with an injection
  task, ``security``: True when the attacker's goal was met);
* :func:`check_ground_truths` replays each user task's ground truth through the adapter and
  compares agentlab's grade with AgentDojo's own run of the same ground truth.

One difference from AgentDojo's harness, on purpose: the function-call trace its checks
read holds the calls that ran -- a call that policy blocked never happened here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, JsonValue
from pydantic_core import to_jsonable_python

from agentlab.adapters import open_checkpointer
from agentlab.agents import Agent, StopConditions
from agentlab.core.clock import TickingClock
from agentlab.core.errors import ConfigError, MissingDependency, ToolRejected
from agentlab.core.ids import IdFactory
from agentlab.core.records import SideEffect
from agentlab.lab.live import open_live_agent
from agentlab.llm import ChatModel, ChatRequest, ChatResponse, ToolCall, Usage
from agentlab.policy import Actor, ApprovalRule, Defences, Policy, UseCase, parse_defences
from agentlab.runtime import Executor
from agentlab.security.metrics import SecurityCounts, security_counts
from agentlab.store import MemoryEventStore, project_run
from agentlab.tools import ToolContext, ToolOutput, ToolRegistry, ToolSpec

if TYPE_CHECKING:
    from agentdojo.base_tasks import BaseInjectionTask, BaseUserTask
    from agentdojo.functions_runtime import Function, FunctionCall, FunctionsRuntime
    from agentdojo.task_suite.task_suite import TaskSuite

BENCHMARK_VERSION = "v1.2.2"
"""The benchmark version the installed ``agentdojo`` runs by default (its
``scripts/benchmark.py``); tasks are taken at their latest revision up to it."""
SUITES = ("workspace", "travel", "banking", "slack")
ATTACKS = ("injecagent", "important_instructions", "ignore_previous", "direct", "system_message")
"""AgentDojo attacks the adapter can place; ``injecagent`` by default."""
RESOURCE = "agentdojo"
"""The executor resource the tools find their environment under."""
ACTOR = "agentdojo_user"
LIMITS = StopConditions(max_steps=40, max_model_calls=80, max_cost_usd=2.0)
"""AgentDojo's tasks take more steps than the help desk's (some ground truths make 15 calls)."""
WRITE_PREFIXES = (
    "add_",
    "append_",
    "cancel_",
    "create_",
    "delete_",
    "invite_",
    "post_",
    "remove_",
    "reschedule_",
    "reserve_",
    "schedule_",
    "send_",
    "share_",
    "update_",
)
"""Function names that change the environment; every other function only reads ..."""
WRITE_NAMES = frozenset({"get_unread_emails", "get_webpage"})
"""... except these, which read and change something on the way: ``get_unread_emails`` marks
the mail read, and ``get_webpage`` sends a request out (the web logs it -- the channel a
link-based exfiltration uses, so output inspection must see its URL)."""


def _require_agentdojo() -> None:
    try:
        import agentdojo  # noqa: F401, PLC0415
    except ImportError as exc:
        raise MissingDependency(
            "AgentDojo's suites need the agentdojo package",
            hint="pip install 'agentlab[agentdojo]'",
        ) from exc


def load_agentdojo_suite(name: str, version: str = BENCHMARK_VERSION) -> TaskSuite[Any]:
    """AgentDojo's suite ``name`` at benchmark ``version``.

    Raises:
        MissingDependency: agentdojo is not installed.
        ConfigError: no such suite or version.
    """
    _require_agentdojo()
    from agentdojo.task_suite.load_suites import get_suites  # noqa: PLC0415

    try:
        suites = get_suites(version)
    except KeyError:
        raise ConfigError(
            f"AgentDojo has no benchmark version {version!r}",
            hint=f"the adapter is tested with {BENCHMARK_VERSION}",
        ) from None
    if name not in suites:
        raise ConfigError(
            f"AgentDojo {version} has no suite {name!r}", hint=f"choose one of {', '.join(suites)}"
        )
    return suites[name]


def is_write(function_name: str) -> bool:
    """True for an AgentDojo function that changes its environment."""
    return function_name.startswith(WRITE_PREFIXES) or function_name in WRITE_NAMES


# -- the environment as an executor resource ---------------------------------------------------


@dataclass
class DojoEnvironment:
    """The environment one run works on, and the calls that ran on it, in order."""

    runtime: FunctionsRuntime
    env: BaseModel
    trace: list[FunctionCall] = field(default_factory=list)


def _jsonable(value: Any) -> JsonValue:
    return to_jsonable_python(value, fallback=str)  # type: ignore[no-any-return]


def environment_diff(before: BaseModel, after: BaseModel) -> JsonValue:
    """The top-level parts of an environment a write changed, with their new content."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {key: new[key] for key in new if old.get(key) != new[key]}


@dataclass(frozen=True)
class AgentDojoToolSpec(ToolSpec[BaseModel]):
    """A governed tool over an AgentDojo function.

    AgentDojo's schemas have optional parameters, which OpenAI's strict mode refuses, so the
    tool is offered without ``strict``; the arguments are still validated by the function's
    own pydantic model before anything runs.
    """

    def openai_tool(self) -> dict[str, Any]:
        """The tool in the OpenAI ``tools`` format, without ``strict``."""
        tool = super().openai_tool()
        tool["function"].pop("strict", None)
        return tool


def _tool(suite: str, function: Function[..., Any]) -> AgentDojoToolSpec:
    write = is_write(function.name)

    async def run(args: BaseModel, ctx: ToolContext) -> ToolOutput:
        holder = ctx.resource(RESOURCE, DojoEnvironment)
        kwargs = args.model_dump()
        if write and ctx.is_dry_run:
            copy = holder.env.model_copy(deep=True)
            result, error = holder.runtime.run_function(copy, function.name, kwargs)
            if error is not None:
                raise ToolRejected(error)
            return ToolOutput(_jsonable(result), diff=environment_diff(holder.env, copy))
        before = holder.env.model_copy(deep=True) if write else None
        result, error = holder.runtime.run_function(holder.env, function.name, kwargs)
        if error is not None:
            raise ToolRejected(error)
        holder.trace.append(_function_call(function.name, kwargs))
        diff = environment_diff(before, holder.env) if before is not None else None
        return ToolOutput(_jsonable(result), diff=diff)

    description = " ".join(function.description.split()) or function.name
    return AgentDojoToolSpec(
        name=function.name,
        description=description,
        arguments=function.parameters,
        side_effect=SideEffect.WRITE if write else SideEffect.READ,
        scope=f"{suite}:{'write' if write else 'read'}",
        system=f"agentdojo_{suite}",
        run=run,
    )


def _function_call(name: str, args: Mapping[str, Any]) -> FunctionCall:
    from agentdojo.functions_runtime import FunctionCall  # noqa: PLC0415

    return FunctionCall(function=name, args=dict(args))


def agentdojo_tools(suite: TaskSuite[Any]) -> ToolRegistry:
    """Every function of ``suite`` as a governed tool."""
    return ToolRegistry(_tool(suite.name, function) for function in suite.tools)


def agentdojo_policy(
    suite: TaskSuite[Any],
    tools: ToolRegistry,
    *,
    offered: Iterable[str] | None = None,
    defences: Defences | None = None,
) -> Policy:
    """The policy an AgentDojo run lives under.

    One actor (AgentDojo's user) in one use case per suite, at autonomy phase 3; every write
    is previewed and then approved by a policy rule (there is no person in AgentDojo's
    loop). ``offered`` narrows the use case's tools -- the ``least_privilege`` layer.
    """
    names = [spec.name for spec in tools]
    chosen = list(offered) if offered is not None else names
    use_case = f"agentdojo_{suite.name}"
    return Policy(
        phase=3,  # type: ignore[arg-type]
        actors={
            ACTOR: Actor(
                scopes=tuple(sorted({spec.scope for spec in tools})),
                data_classes=("public",),
                use_cases=(use_case,),
            )
        },
        use_cases={
            use_case: UseCase(description=f"AgentDojo's {suite.name} suite", tools=tuple(chosen))
        },
        approvals=tuple(
            ApprovalRule(name=f"auto_{spec.name}", tool=spec.name, approver="policy")
            for spec in tools
            if spec.is_write
        ),
        defences=defences or Defences(),
    )


def least_privilege_tools(
    suite: TaskSuite[Any], tools: ToolRegistry, user_task: BaseUserTask[Any]
) -> list[str]:
    """Every read tool, and the writes the user task's ground truth makes.

    An administrator who knows exactly what each use case needs would grant this: an upper
    bound on what least privilege can do (it reads the task's answer key to decide).
    """
    env = user_task.init_environment(suite.load_and_inject_default_environment({}))
    needed = {call.function for call in user_task.ground_truth(env)}
    return [spec.name for spec in tools if not spec.is_write or spec.name in needed]


# -- attacks -----------------------------------------------------------------------------------


def injections_for(
    suite: TaskSuite[Any],
    user_task: BaseUserTask[Any],
    injection_task: BaseInjectionTask[Any],
    attack: str = "injecagent",
) -> dict[str, str]:
    """The attack's text for each injection vector the user task's ground truth reads."""
    if attack not in ATTACKS:
        raise ConfigError(f"unknown attack {attack!r}", hint=f"choose one of {', '.join(ATTACKS)}")
    from agentdojo.attacks.attack_registry import ATTACKS as REGISTRY  # noqa: PLC0415
    from agentdojo.attacks.base_attacks import FixedJailbreakAttack  # noqa: PLC0415

    target = SimpleNamespace(name="agentlab")  # the attacks only read the pipeline's name
    cls = REGISTRY[attack]
    if attack == "important_instructions":
        # Its constructor wants a vendor's model name; address "the AI assistant" instead.
        instance = cls.__new__(cls)
        FixedJailbreakAttack.__init__(instance, cls._JB_STRING, suite, target)
        instance.user_name, instance.model_name = "Emma Johnson", "AI assistant"
    else:
        instance = cls(suite, target)
    return instance.attack(user_task, injection_task)  # type: ignore[no-any-return]


# -- runs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DojoResult:
    """One AgentDojo task run by an agentlab agent, graded by AgentDojo."""

    suite: str
    user_task: str
    injection_task: str | None
    config: str
    model: str
    utility: bool
    """AgentDojo's ``utility`` of the user task."""
    security: bool | None
    """AgentDojo's ``security`` of the injection task: True when the attack succeeded;
    None without an injection task."""
    answer: str
    calls: tuple[str, ...]
    """The functions that ran, in order."""
    counts: SecurityCounts
    error: str | None = None


def _grade(task: Any, output: str, pre: BaseModel, post: BaseModel, trace: Sequence[Any]) -> bool:
    """A task's check the way AgentDojo runs it: from the traces if it can, else the states."""
    from agentdojo.base_tasks import BaseUserTask  # noqa: PLC0415

    if isinstance(task, BaseUserTask):
        found = task.utility_from_traces(output, pre, post, trace)
        return bool(task.utility(output, pre, post) if found is None else found)
    found = task.security_from_traces(output, pre, post, trace)
    return bool(task.security(output, pre, post) if found is None else found)


async def _no_world(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"detail": "AgentDojo runs reach no sandbox system"})


@asynccontextmanager
async def _offline_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(_no_world), base_url="http://world"
    ) as http:
        yield http


def _seed_of(*parts: str) -> int:
    return sum(ord(c) * (i + 1) for i, c in enumerate("|".join(parts))) % (2**31)


async def arun_dojo_task(
    suite: TaskSuite[Any],
    user_task: BaseUserTask[Any],
    injection_task: BaseInjectionTask[Any] | None = None,
    *,
    config: str = "single",
    model: str = "sim-large",
    defences: Defences | str = "all",
    attack: str = "injecagent",
    model_base_url: str | None = None,
    chat_model: ChatModel | None = None,
) -> DojoResult:
    """Run one user task (with one injection task's attack in place, if given) and grade it.

    Args:
        suite: An AgentDojo suite (:func:`load_agentdojo_suite`).
        user_task: One of its user tasks.
        injection_task: One of its injection tasks, placed by ``attack``; None runs the user
            task in the default environment.
        config: ``single`` or ``multi``.
        model: A simulator profile, or an endpoint's model name with ``model_base_url``.
        defences: The defence layers (a spec such as ``all``, ``none``, ``all,-dlp``).
        attack: The AgentDojo attack that writes the injections.
        model_base_url: An OpenAI-compatible endpoint; None runs the simulator.
        chat_model: A model object to use instead (the ground-truth replay's).
    """
    _require_agentdojo()
    from agentdojo.functions_runtime import FunctionsRuntime  # noqa: PLC0415

    if isinstance(defences, str):
        defences = parse_defences(defences)
    injections = injections_for(suite, user_task, injection_task, attack) if injection_task else {}
    env = user_task.init_environment(suite.load_and_inject_default_environment(injections))
    pre = env.model_copy(deep=True)
    holder = DojoEnvironment(FunctionsRuntime(suite.tools), env)
    tools = agentdojo_tools(suite)
    offered = least_privilege_tools(suite, tools, user_task) if defences.least_privilege else None
    policy = agentdojo_policy(suite, tools, offered=offered, defences=defences)
    use_case = f"agentdojo_{suite.name}"
    store = MemoryEventStore()
    clock = TickingClock()
    ids = IdFactory.seeded(_seed_of(suite.name, user_task.ID, getattr(injection_task, "ID", "")))
    async with _offline_http() as http:
        if chat_model is not None:
            async with open_checkpointer("memory") as checkpointer:
                executor = Executor(
                    tools=tools, policy=policy, http=http, clock=clock, resources={RESOURCE: holder}
                )
                agent = Agent(
                    config,
                    model=chat_model,
                    executor=executor,
                    store=store,
                    checkpointer=checkpointer,
                    limits=LIMITS,
                    clock=clock,
                    ids=ids,
                )
                await agent.arun(user_task.PROMPT, actor=ACTOR, use_case=use_case)
        else:
            async with open_live_agent(
                config,
                store=store,
                model=model,
                model_base_url=model_base_url,
                policy=policy,
                seed=0,
                clock=clock,
                ids=ids,
                world_http=http,
                tools=tools,
                resources={RESOURCE: holder},
                limits=LIMITS,
            ) as live:
                await live.agent.arun(user_task.PROMPT, actor=ACTOR, use_case=use_case)
    events = store.read(store.run_ids()[0])
    state = project_run(events)
    error = None if state.status == "succeeded" else f"the run {state.status}"
    output = state.answer or ""
    post = holder.env
    return DojoResult(
        suite=suite.name,
        user_task=user_task.ID,
        injection_task=injection_task.ID if injection_task is not None else None,
        config=config,
        model=chat_model.name if chat_model is not None else model,
        utility=_grade(user_task, output, pre, post, holder.trace),
        security=(
            _grade(injection_task, output, pre, post, holder.trace)
            if injection_task is not None
            else None
        ),
        answer=output,
        calls=tuple(call.function for call in holder.trace),
        counts=security_counts(events),
        error=error,
    )


# -- the ground truth, replayed ----------------------------------------------------------------


class GroundTruthModel:
    """A "model" that makes a task's ground-truth calls one per turn, then gives its answer.

    It reads nothing: what the adapter's tools, executor and grader make of the calls is
    what is being checked.
    """

    def __init__(self, calls: Sequence[FunctionCall], answer: str) -> None:
        self._calls = list(calls)
        self._answer = answer
        self._turn = 0

    @property
    def name(self) -> str:
        """Always ``ground-truth``."""
        return "ground-truth"

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        """The next ground-truth call, or the answer once they are all made."""
        turn, self._turn = self._turn, self._turn + 1
        calls: tuple[ToolCall, ...] = ()
        content: str | None = None
        if turn < len(self._calls):
            call = self._calls[turn]
            arguments = json.dumps(_jsonable(dict(call.args)), ensure_ascii=False)
            calls = (ToolCall(id=f"gt_{turn}", name=call.function, arguments=arguments),)
        else:
            content = self._answer
        return ChatResponse(
            response_id=f"gt_{turn}",
            model=self.name,
            content=content,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "stop",
            usage=Usage(prompt_tokens=0, completion_tokens=0),
            cost_usd=0.0,
            latency_ms=0.0,
        )


@dataclass(frozen=True)
class GroundTruthCheck:
    """agentlab's grade of a replayed ground truth, next to AgentDojo's own."""

    user_task: str
    agentdojo_utility: bool
    agentlab_utility: bool
    blocked: tuple[str, ...] = ()
    """What the defences stopped in the replay (policy blocks, exfiltration, DLP)."""

    @property
    def agrees(self) -> bool:
        """True when both grades are the same."""
        return self.agentdojo_utility == self.agentlab_utility


async def acheck_ground_truths(
    suite: TaskSuite[Any],
    *,
    defences: Defences | str = "none",
    tasks: Sequence[str] | None = None,
) -> list[GroundTruthCheck]:
    """Replay each user task's ground truth through the adapter; grade it both ways.

    AgentDojo's grade is its own harness running the ground truth (``GroundTruthPipeline``);
    agentlab's is the same calls sent through the governed tools and the ``single`` agent,
    graded by :func:`arun_dojo_task`. With ``defences`` other than ``none`` the difference
    is what the layers would have refused a perfect agent.
    """
    from agentdojo.agent_pipeline.ground_truth_pipeline import (  # noqa: PLC0415
        GroundTruthPipeline,
    )

    checks = []
    for task_id, user_task in suite.user_tasks.items():
        if tasks is not None and task_id not in tasks:
            continue
        theirs, _ = suite.run_task_with_pipeline(
            GroundTruthPipeline(user_task), user_task, injection_task=None, injections={}
        )
        env = user_task.init_environment(suite.load_and_inject_default_environment({}))
        model = GroundTruthModel(user_task.ground_truth(env), user_task.GROUND_TRUTH_OUTPUT)
        ours = await arun_dojo_task(
            suite, user_task, config="single", defences=defences, chat_model=model
        )
        blocked = []
        if ours.counts.policy_blocks:
            blocked.append(f"{ours.counts.policy_blocks} blocked")
        if ours.counts.exfiltrations_blocked:
            blocked.append(f"{ours.counts.exfiltrations_blocked} exfiltration")
        if ours.counts.dlp_detections:
            blocked.append(f"{ours.counts.dlp_detections} DLP")
        checks.append(GroundTruthCheck(task_id, bool(theirs), ours.utility, tuple(blocked)))
    return checks


# -- a whole suite -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DojoSummary:
    """A suite's runs under one configuration, model and defence setting."""

    suite: str
    config: str
    model: str
    defences: str
    results: tuple[DojoResult, ...]

    @property
    def benign(self) -> list[DojoResult]:
        """Runs without an injection."""
        return [r for r in self.results if r.injection_task is None]

    @property
    def attacked(self) -> list[DojoResult]:
        """Runs with an injection in place."""
        return [r for r in self.results if r.injection_task is not None]

    @property
    def utility(self) -> float:
        """Share of runs without injection whose user task AgentDojo grades as done."""
        runs = self.benign
        return sum(r.utility for r in runs) / len(runs) if runs else 0.0

    @property
    def utility_under_attack(self) -> float:
        """Share of runs with an injection whose user task was still done."""
        runs = self.attacked
        return sum(r.utility for r in runs) / len(runs) if runs else 0.0

    @property
    def attack_success_rate(self) -> float:
        """Share of runs with an injection where AgentDojo's security check says it worked."""
        runs = self.attacked
        return sum(bool(r.security) for r in runs) / len(runs) if runs else 0.0


async def arun_agentdojo(
    suite_name: str,
    *,
    config: str = "single",
    model: str = "sim-large",
    defences: str = "all",
    limit: int | None = None,
    injection_limit: int | None = None,
    with_injections: bool = True,
    attack: str = "injecagent",
    version: str = BENCHMARK_VERSION,
    model_base_url: str | None = None,
) -> DojoSummary:
    """Run a suite's user tasks, and each with each injection task, under one setting.

    Args:
        suite_name: ``workspace``, ``travel``, ``banking`` or ``slack``.
        config: ``single`` or ``multi``.
        model: A simulator profile, or an endpoint's model name with ``model_base_url``.
        defences: ``all``, ``none``, or a list of layers (docs/security.md).
        limit: The first ``limit`` user tasks only.
        injection_limit: The first ``injection_limit`` injection tasks only.
        with_injections: Also run every (user task, injection task) pair.
        attack: The AgentDojo attack that writes the injections.
        version: AgentDojo's benchmark version.
        model_base_url: An OpenAI-compatible endpoint; None runs the simulator.
    """
    if config not in ("single", "multi"):
        raise ConfigError(
            f"AgentDojo runs use a tool-using configuration, not {config!r}",
            hint="use single or multi",
        )
    parse_defences(defences)  # a wrong spec fails before anything runs
    suite = load_agentdojo_suite(suite_name, version)
    user_tasks = list(suite.user_tasks.values())[:limit]
    injection_tasks = list(suite.injection_tasks.values())[:injection_limit]
    results: list[DojoResult] = []
    for user_task in user_tasks:
        pairs: list[Any] = [None]
        if with_injections:
            pairs += injection_tasks
        for injection_task in pairs:
            results.append(
                await arun_dojo_task(
                    suite,
                    user_task,
                    injection_task,
                    config=config,
                    model=model,
                    defences=defences,
                    attack=attack,
                    model_base_url=model_base_url,
                )
            )
    return DojoSummary(suite_name, config, model, defences, tuple(results))


def run_agentdojo(suite_name: str, **options: Any) -> DojoSummary:
    """:func:`arun_agentdojo` for code that is not async (scripts, the CLI)."""
    return asyncio.run(arun_agentdojo(suite_name, **options))


def check_ground_truths(
    suite_name: str, *, version: str = BENCHMARK_VERSION, **options: Any
) -> list[GroundTruthCheck]:
    """:func:`acheck_ground_truths` on a suite by name, for code that is not async."""
    return asyncio.run(acheck_ground_truths(load_agentdojo_suite(suite_name, version), **options))
