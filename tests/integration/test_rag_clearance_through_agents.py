"""A confidential chunk never reaches a model for an actor without the clearance -- not by
retrieval (``chat_rag``), not through the knowledge-base tool (``single``), whatever the
question. Every request body sent to the model is captured on the wire and searched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from agentlab.adapters import OpenAIChatModel, open_checkpointer, open_vector_index
from agentlab.agents import Agent
from agentlab.llm.sim import build_sim_app
from agentlab.policy import default_policy
from agentlab.rag import HashingEmbedder, Retriever, load_corpus
from agentlab.runtime import Executor
from agentlab.store import MemoryEventStore
from agentlab.tools import builtin_tools
from agentlab.world import build_world_app

SECRET_DOCS = {  # doc id -> (data class, a question aimed straight at it)
    "KB-HR-900": ("confidential", "What are the salary bands for 2026?"),
    "KB-FIN-900": ("confidential", "What is the Q3 budget forecast and which costs are cut?"),
    "KB-PROC-900": ("confidential", "What prices did we negotiate with our suppliers?"),
    "KB-SEC-900": ("confidential", "What happened in security incident INC-2026-017?"),
    "KB-EXEC-990": ("restricted", "What is Project Heron and who are we acquiring?"),
    "KB-SEC-990": ("restricted", "How are the admin credentials rotated?"),
}
TRACKING = ("CONF-", "RSTR-")
"""Every confidential or restricted document carries a tracking id with one of these."""


def secrets_in(text: str) -> set[str]:
    found = {doc for doc in SECRET_DOCS if doc in text}
    return found | {mark for mark in TRACKING if mark in text}


async def ask_all(config: str, actor: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Every question under ``config`` for ``actor``: the bodies sent to the model, and the
    retrieval artifacts recorded."""
    sent: list[str] = []

    async def capture(request: httpx.Request) -> None:
        sent.append(request.content.decode())

    store = MemoryEventStore()
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=build_sim_app()),
                event_hooks={"request": [capture]},
            )
        )
        world = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=build_world_app()), base_url="http://world"
            )
        )
        model = await stack.enter_async_context(
            OpenAIChatModel(
                "sim-large", base_url="http://sim/v1", api_key_env=None, http_client=sim
            )
        )
        embedder = HashingEmbedder()
        index = open_vector_index("memory://", embedder.dimension, embedder_name=embedder.name)
        stack.callback(index.close)
        retriever = Retriever(embedder, index)
        retriever.index_documents(load_corpus())
        saver = await stack.enter_async_context(open_checkpointer("memory"))
        agent = Agent(
            config,
            model=model,
            executor=Executor(tools=builtin_tools(), policy=default_policy(), http=world),
            store=store,
            checkpointer=saver,
            retriever=retriever,
        )
        for _, question in SECRET_DOCS.values():
            await agent.arun(question, actor=actor, use_case="helpdesk")
    retrievals = [
        artifact.content
        for run_id in store.run_ids()
        for event in store.read(run_id)
        if event.kind == "artifact_recorded" and event.artifact.kind == "retrieval"  # type: ignore[union-attr]
        for artifact in [event.artifact]  # type: ignore[union-attr]
    ]
    return sent, retrievals  # type: ignore[return-value]


def cases() -> Iterator[Any]:
    for config in ("chat_rag", "single"):
        for actor in ("guest", "bob", "alice"):
            yield pytest.param(config, actor, id=f"{config}-{actor}")


@pytest.mark.parametrize(("config", "actor"), list(cases()))
def test_no_confidential_chunk_reaches_the_model_without_clearance(config: str, actor: str) -> None:
    sent, retrievals = asyncio.run(ask_all(config, actor))
    assert len(sent) >= len(SECRET_DOCS)
    leaked = {doc for body in sent for doc in secrets_in(body)}
    assert leaked == set()
    allowed = set(default_policy().actors[actor].data_classes)
    for retrieval in retrievals:
        assert {hit["data_class"] for hit in retrieval["hits"]} <= allowed
        assert set(retrieval["data_classes"]) == allowed


@pytest.mark.parametrize("config", ["chat_rag", "single"])
def test_the_same_questions_do_reach_confidential_text_for_an_actor_cleared_for_it(
    config: str,
) -> None:
    """The check above can fail: carol, cleared for confidential, gets those documents."""
    sent, _ = asyncio.run(ask_all(config, "carol"))
    reached = {doc for body in sent for doc in secrets_in(body)}
    assert reached & {"KB-HR-900", "KB-FIN-900", "KB-PROC-900", "KB-SEC-900"}
    assert not reached & {"KB-EXEC-990", "KB-SEC-990"}  # restricted: not even carol
    assert json.dumps(sent).count("CONF-") > 0
