"""Live runs: an agent wired to a model endpoint and to the tools' systems.

``open_live_agent`` assembles the parts a run needs -- the model (the simulator in-process by
default, or any OpenAI-compatible endpoint), the LLM budget from the policy, the sandbox world
(in-process, or a server at ``world_url``), the governed executor, the knowledge index for
``chat_rag``, and the checkpointer -- and closes them again. Everything talks HTTP: the
in-process parts are reached through ``httpx.ASGITransport``, so the real ``openai`` client
and the tools' real HTTP code run either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from agentlab.adapters import OpenAIChatModel, open_checkpointer, open_vector_index
from agentlab.agents import Agent, StopConditions
from agentlab.agents.context import Progress
from agentlab.core.clock import Clock
from agentlab.core.errors import ConfigError
from agentlab.core.ids import IdFactory
from agentlab.llm import LLMBudget, RateBudget
from agentlab.llm.sim import build_sim_app
from agentlab.policy import Defences, Policy, default_policy, parse_defences
from agentlab.rag import Document, HashingEmbedder, Retriever, load_corpus
from agentlab.runtime import Executor, Reviewer, ToolCaps
from agentlab.security import TokenBroker, VaultAuth, open_api_vault
from agentlab.store import EventStore
from agentlab.store.audit import AuditLog
from agentlab.store.conversation import ConversationLog
from agentlab.tools import Browser, ToolRegistry, builtin_tools
from agentlab.world import World, build_world_app

SIM_PREFIX = "sim-"
"""Model names that are the simulator's profiles."""
SIM_BASE_URL = "http://simulator/v1"
"""The base URL the in-process simulator answers on (it never leaves the process)."""


@dataclass
class LiveAgent:
    """An agent with its parts, open until the ``open_live_agent`` block ends."""

    agent: Agent
    world: World | None
    """The in-process sandbox world, to inspect (``diff()``) or fault; None for a remote one."""
    model: OpenAIChatModel


@asynccontextmanager
async def open_live_agent(
    config: str,
    *,
    store: EventStore,
    model: str = "sim-large",
    model_base_url: str | None = None,
    model_api_key_env: str = "OPENAI_API_KEY",
    world_url: str | None = None,
    checkpoint_url: str = "memory",
    checkpoint_key: bytes | None = None,
    policy: Policy | None = None,
    audit: AuditLog | None = None,
    conversation: ConversationLog | None = None,
    reviewer: Reviewer | None = None,
    limits: StopConditions | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    sim_time_scale: float = 0.0,
    browser: Browser | None = None,
    world_http: httpx.AsyncClient | None = None,
    model_http: httpx.AsyncClient | None = None,
    model_clock: Callable[[], float] | None = None,
    use_budget: bool = True,
    budget: RateBudget | None = None,
    caps: ToolCaps | None = None,
    corpus: Sequence[Document] | None = None,
    retriever: Retriever | None = None,
    tools: ToolRegistry | None = None,
    defences: Defences | str | None = None,
    resources: Mapping[str, object] | None = None,
) -> AsyncIterator[LiveAgent]:
    """Open an agent of ``config`` with everything it needs.

    Args:
        config: ``chat_rag``, ``single`` or ``multi``.
        store: Where runs are recorded.
        model: A simulator profile, or the endpoint's model name with ``model_base_url``.
        model_base_url: An OpenAI-compatible endpoint; None runs the simulator in-process.
        model_api_key_env: The variable holding the endpoint's key; the simulator's profiles
            (``sim-*``) need none.
        world_url: A running world (``agentlab world serve``); None runs one in-process.
        checkpoint_key: A Fernet key that encrypts every checkpointed value (an open run's
            conversation); the CLI passes the conversation log's key.
        checkpoint_url: Where graph state is checkpointed; ``memory`` lives as long as this
            block, a DuckDB or PostgreSQL URL survives the process.
        policy: The policy; the embedded default if None.
        audit: Where decision points go; in memory if None.
        conversation: Where prompts, answers and tool text go, encrypted.
        reviewer: Answers approvals in-line (a suite's scripted reviewer); None leaves them to
            the approval queue, and a run that needs one pauses.
        limits: Stop conditions.
        seed: Sent with every model request.
        progress: Receives a line per model call, tool outcome and budget wait.
        clock: Times events.
        ids: Hands out ids (seeded ones make runs identical event for event).
        sim_time_scale: How much of the simulator's modelled latency it really sleeps.
        browser: The browser tools' browser (``adapters.open_playwright_browser``); None
            leaves the browser tools without one, so offer them in no use case.
        world_http: A client for the tools' systems, used as given (the lab's runs pass one
            whose transport records or plays a cassette); overrides ``world_url``.
        model_http: A client for the model endpoint, used as given, at ``model_base_url``
            (or the simulator's URL when that is None).
        model_clock: Monotonic seconds for measuring model latency (the lab's virtual time).
        budget: The LLM budget to pace model calls with, shared with other agents (a
            suite's runs, or a cluster's through Redis); None makes one from the policy.
        caps: The tools' concurrency, daily and per-run caps, shared likewise; None makes
            them from the policy for this agent alone.
        use_budget: Pace model calls with the policy's LLM budget; a replay, which sends
            nothing to a provider, does without.
        corpus: The documents ``chat_rag`` retrieves from; the help-desk knowledge base if
            None.
        retriever: A knowledge base already built, used as given instead of ``corpus`` and
            left open (the lab builds one per suite rather than one per run).
        tools: The tools the executor knows (the built-in ones if None).
        defences: Overrides the policy's defence layers, to measure them: a
            :class:`~agentlab.policy.Defences`, or a spec such as ``all``, ``none`` or
            ``all,-spotlighting`` (docs/security.md). None keeps the policy's.
        resources: More executor resources for ``tools`` that need them (an AgentDojo
            environment), besides ``browser``.

    The in-process world checks short-lived, scoped tokens on its JSON APIs: the executor's
    client gets them from a vault made for this block (docs/security.md), so no tool ever
    holds a key. A world at ``world_url`` or behind ``world_http`` is used as it is.
    """
    policy = policy or default_policy()
    if defences is not None:
        if isinstance(defences, str):
            defences = parse_defences(defences, policy.defences)
        policy = policy.with_defences(defences)
    model_clock = model_clock or time.monotonic
    if model_base_url is None and not model.startswith(SIM_PREFIX):
        raise ConfigError(
            f"model {model!r} is not one of the simulator's profiles, and no endpoint was given",
            hint="pass model_base_url (--model-url) for a real endpoint, or use sim-large / "
            "sim-small",
        )
    async with AsyncExitStack() as stack:
        world = None
        if world_http is not None:
            pass  # the caller's client, closed by the caller
        elif world_url is None:
            vault, api_keys = open_api_vault(clock=clock)
            world = World(clock=clock, api_keys=api_keys)
            world_http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=build_world_app(world)),
                base_url="http://world",
                auth=VaultAuth(TokenBroker(vault)),
            )
        else:
            world_http = httpx.AsyncClient(base_url=world_url)
        if world is not None or world_url is not None:
            await stack.enter_async_context(world_http)
        if not use_budget:
            budget = None
        elif budget is None:
            budget = LLMBudget.from_policy(policy, on_wait=progress)
        if model_http is not None:
            chat_model = OpenAIChatModel(
                model,
                base_url=model_base_url or SIM_BASE_URL,
                api_key_env=None if model.startswith(SIM_PREFIX) else model_api_key_env,
                http_client=model_http,
                budget=budget,
                seed=seed,
                clock=model_clock,
            )
        elif model_base_url is None:
            sim_http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=build_sim_app(time_scale=sim_time_scale))
            )
            await stack.enter_async_context(sim_http)
            chat_model = OpenAIChatModel(
                model,
                base_url=SIM_BASE_URL,
                api_key_env=None,
                http_client=sim_http,
                budget=budget,
                seed=seed,
                clock=model_clock,
            )
        else:
            chat_model = OpenAIChatModel(
                model,
                base_url=model_base_url,
                # the simulator's profiles (sim-*) take no key, wherever they are served
                api_key_env=None if model.startswith(SIM_PREFIX) else model_api_key_env,
                budget=budget,
                seed=seed,
                clock=model_clock,
            )
        await stack.enter_async_context(chat_model)
        endpoint_key = os.environ.get(model_api_key_env, "") if model_base_url else ""
        executor = Executor(
            tools=tools if tools is not None else builtin_tools(),
            policy=policy,
            http=world_http,
            audit=audit,
            caps=caps,
            reviewer=reviewer,
            clock=clock,
            conversation=conversation,
            resources={
                **({"browser": browser} if browser is not None else {}),
                **(resources or {}),
            },
            known_secrets=(endpoint_key,) if endpoint_key else (),
        )
        checkpointer = await stack.enter_async_context(
            open_checkpointer(checkpoint_url, key=checkpoint_key)
        )
        if retriever is None and config == "chat_rag":
            retriever = open_knowledge(stack, corpus)
        agent = Agent(
            config,
            model=chat_model,
            executor=executor,
            store=store,
            checkpointer=checkpointer,
            retriever=retriever,
            limits=limits,
            conversation=conversation,
            seed=seed,
            progress=progress,
            clock=clock,
            ids=ids,
        )
        yield LiveAgent(agent, world, chat_model)


def open_knowledge(
    stack: AsyncExitStack | ExitStack, corpus: Sequence[Document] | None
) -> Retriever:
    """A knowledge base in a throwaway exact index, with the hashing embedder.

    ``corpus`` None means the help desk's knowledge base; the index is closed with ``stack``.
    """
    embedder = HashingEmbedder()
    index = open_vector_index("memory://", embedder.dimension, embedder_name=embedder.name)
    stack.callback(index.close)
    retriever = Retriever(embedder, index)
    retriever.index_documents(load_corpus() if corpus is None else list(corpus))
    return retriever
