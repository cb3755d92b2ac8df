"""The OpenAI-compatible embedder against an in-process server: an httpx transport, no socket."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from agentlab.adapters import open_vector_index
from agentlab.adapters.openai_embedder import OpenAIEmbedder
from agentlab.core.errors import BackendError, ConfigError, EmbeddingMismatch
from agentlab.rag import AccessScope, Embedder, HashingEmbedder, Retriever, load_corpus

KEY = "sk-test-0123456789"


class EmbeddingsServer:
    """Speaks POST /v1/embeddings, with the hashing embedder's vectors (so they mean something)."""

    def __init__(self, dimension: int = 64) -> None:
        self.hashing = HashingEmbedder(dimension)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.fail_with: list[int] = []
        self.reply_dimension: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url.path == "/v1/embeddings"
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        if self.fail_with:
            status = self.fail_with.pop(0)
            return httpx.Response(
                status,
                json={"error": {"message": f"status {status}", "type": "server_error"}},
                headers={"retry-after-ms": "1"},
            )
        vectors = self.hashing.embed(body["input"])
        if self.reply_dimension is not None:
            vectors = np.ones((len(vectors), self.reply_dimension))
        data = [
            {"object": "embedding", "index": i, "embedding": vector.tolist()}
            for i, vector in enumerate(vectors)
        ]
        data.reverse()  # the wire format does not promise order: index does
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            },
        )


@pytest.fixture
def server() -> EmbeddingsServer:
    return EmbeddingsServer()


@pytest.fixture
def make(
    server: EmbeddingsServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., OpenAIEmbedder]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def make_(**kwargs: Any) -> OpenAIEmbedder:
        kwargs.setdefault("model", "local-minilm")
        kwargs.setdefault("dimension", 64)
        return OpenAIEmbedder(
            base_url="http://embeddings.test/v1",
            http_client=httpx.Client(transport=httpx.MockTransport(server)),
            **kwargs,
        )

    return make_


def test_vectors_come_back_in_input_order_normalised(
    make: Callable[..., OpenAIEmbedder], server: EmbeddingsServer
) -> None:
    embedder = make(batch_size=2)
    texts = ["reset my password", "VPN drops", "expense policy", "laptop refresh", "travel"]
    vectors = embedder.embed(texts)
    assert isinstance(embedder, Embedder)
    assert embedder.name == "openai:local-minilm:64"
    assert vectors.shape == (5, 64)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, server.hashing.embed(texts), atol=1e-6)
    assert [r["input"] for r in server.requests] == [texts[0:2], texts[2:4], texts[4:]]
    assert all(r["encoding_format"] == "float" for r in server.requests)
    assert all("dimensions" not in r for r in server.requests)


def test_the_key_comes_from_the_environment_only(
    make: Callable[..., OpenAIEmbedder], server: EmbeddingsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make().embed(["hello"])
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        make()
    monkeypatch.setenv("EMBEDDINGS_KEY", "sk-other")
    make(api_key_env="EMBEDDINGS_KEY").embed(["hello"])
    assert server.headers[-1]["authorization"] == "Bearer sk-other"
    make(api_key_env=None).embed(["hello"])  # a local server that needs no key


def test_a_shorter_text_embedding_3_vector_is_asked_for_with_dimensions(
    make: Callable[..., OpenAIEmbedder], server: EmbeddingsServer
) -> None:
    make(model="text-embedding-3-small", dimension=64).embed(["a"])
    assert server.requests[-1]["dimensions"] == 64
    native = make(model="text-embedding-3-small", dimension=None)
    assert native.dimension == 1536
    with pytest.raises(ConfigError, match="cannot shorten"):
        make(model="text-embedding-ada-002", dimension=64)
    with pytest.raises(ConfigError, match="dimension"):
        make(model="some-local-model", dimension=None)


def test_vectors_of_another_length_are_refused(
    make: Callable[..., OpenAIEmbedder], server: EmbeddingsServer
) -> None:
    server.reply_dimension = 32
    with pytest.raises(EmbeddingMismatch, match="32-d"):
        make().embed(["a"])


def test_a_transient_failure_is_retried_and_a_lasting_one_is_a_backend_error(
    make: Callable[..., OpenAIEmbedder], server: EmbeddingsServer
) -> None:
    server.fail_with = [503]
    assert make(max_retries=2).embed(["a"]).shape == (1, 64)
    server.fail_with = [503, 503, 503]
    with pytest.raises(BackendError, match="embeddings failed"):
        make(max_retries=2).embed(["a"])


def test_a_refused_key_or_request_is_a_config_error_without_the_key(
    make: Callable[..., OpenAIEmbedder], server: EmbeddingsServer
) -> None:
    server.fail_with = [401]
    with pytest.raises(ConfigError, match="refused the embeddings key") as caught:
        make().embed(["a"])
    assert KEY not in str(caught.value)
    server.fail_with = [400]
    with pytest.raises(ConfigError, match="status 400"):
        make().embed(["a"])


def test_the_retriever_works_over_remote_embeddings(make: Callable[..., OpenAIEmbedder]) -> None:
    embedder = make()
    with open_vector_index("memory://", embedder.dimension, embedder_name=embedder.name) as index:
        retriever = Retriever(embedder, index)
        retriever.index_documents(load_corpus())
        scope = AccessScope.of_classes({"internal"})
        hits = retriever.retrieve("purchase order approval thresholds", scope)
        assert hits[0].doc_id == "KB-FIN-003"
