"""Through the governed search_kb tool, an actor never sees a document above its clearance.

The tool passes the actor's data classes (from the policy) to the knowledge base, which
filters before it searches. Queries are drawn from the shipped corpus's own words, so they
do hit confidential and restricted documents when nothing filters.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agentlab.policy import default_policy
from agentlab.runtime import CallRequest
from agentlab.world import build_world_app
from agentlab.world.fixture import DEFAULT_KB
from agentlab.world.kb import load_articles
from tests.unit.runtime._bench import bench, run

ARTICLES = load_articles(DEFAULT_KB)
CLASS_OF = {a.doc_id: a.data_class for a in ARTICLES}
SECRET_WORDS = sorted(
    {
        word
        for a in ARTICLES
        if a.data_class in ("confidential", "restricted")
        for word in re.findall(r"[a-z]{5,}", (a.title + " " + a.content).lower())
    }
)
WORLD_APP = build_world_app()


def _search(actor: str, use_case: str, query: str) -> set[str]:
    async def scenario() -> set[str]:
        async with bench(app=WORLD_APP) as b:
            rec = b.start(actor=actor)
            outcome = await b.executor.call(
                rec, CallRequest(actor, use_case), "search_kb", {"query": query, "limit": 10}
            )
            assert outcome.status == "ok", outcome.message
            return {article["doc_id"] for article in outcome.content["articles"]}

    return run(scenario())


def test_the_corpus_has_documents_above_everyones_clearance() -> None:
    assert {"confidential", "restricted"} <= set(CLASS_OF.values())
    assert SECRET_WORDS


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(SECRET_WORDS), min_size=1, max_size=4),
    who=st.sampled_from([("guest", "helpdesk"), ("bob", "helpdesk"), ("carol", "helpdesk")]),
)
def test_search_kb_returns_only_the_actors_data_classes(
    words: list[str], who: tuple[str, str]
) -> None:
    actor, use_case = who
    allowed = set(default_policy().actors[actor].data_classes)
    found = _search(actor, use_case, " ".join(words))
    assert {CLASS_OF[doc_id] for doc_id in found} <= allowed


def test_carol_is_cleared_for_confidential_and_finds_it() -> None:
    """The filter is not simply refusing everything: clearance does let documents through."""
    confidential = next(a for a in ARTICLES if a.data_class == "confidential")
    found = _search("carol", "helpdesk", confidential.title)
    assert confidential.doc_id in found
    assert confidential.doc_id not in _search("bob", "helpdesk", confidential.title)
