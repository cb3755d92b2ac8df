"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint, through the openai SDK.

OpenAI itself, Azure OpenAI, vLLM, Ollama, LM Studio and text-embeddings-inference all speak
this wire format. The API key comes from an environment variable (``OPENAI_API_KEY`` unless
told otherwise), never from a file or an argument, so it cannot end up in a notebook, a
suite file or a cassette.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import numpy as np
import openai
from numpy.typing import NDArray
from openai.types import Embedding

from agentlab.adapters._api_keys import api_key_from_env
from agentlab.core.errors import BackendError, ConfigError, EmbeddingMismatch

NATIVE_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
"""OpenAI's models and the length of their vectors; other models need ``dimension=``."""
SHORTENABLE = ("text-embedding-3-small", "text-embedding-3-large")
"""Models that return shorter vectors on request (the API's ``dimensions`` parameter)."""


class OpenAIEmbedder:
    """An Embedder over an OpenAI-compatible embeddings endpoint.

    Args:
        model: The model name, e.g. ``text-embedding-3-small`` or a local server's model.
        dimension: Length of the vectors. For OpenAI's models it defaults to the model's
            own, and a smaller one is asked for with the API's ``dimensions`` parameter (the
            text-embedding-3 models); for other models it is required. Every response is
            checked against it.
        base_url: The endpoint, e.g. ``http://localhost:8000/v1``; OpenAI's by default.
        api_key_env: The environment variable that holds the key; None for an endpoint that
            needs none.
        batch_size: Texts per request.
        timeout_s: Per-request timeout.
        max_retries: The SDK's retries (with backoff) on 429 and 5xx responses.
        http_client: An httpx client to send the requests with (tests pass one with a
            transport into an in-process app).

    Raises:
        ConfigError: the key's variable is unset, or the dimension is unknown.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimension: int | None = None,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        batch_size: int = 256,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        http_client: httpx.Client | None = None,
    ) -> None:
        native = NATIVE_DIMENSIONS.get(model)
        if dimension is None and native is None:
            raise ConfigError(
                f"the dimension of embedding model {model!r} is not known",
                hint="pass dimension=, the length of the vectors the model returns",
            )
        self.dimension = dimension or native or 0
        if native is not None and self.dimension != native and model not in SHORTENABLE:
            raise ConfigError(
                f"{model} returns {native}-d vectors and cannot shorten them",
                hint=f"use dimension={native}, or a text-embedding-3 model",
            )
        # Ask for a shorter vector only where the API offers it; others would reject the field.
        self._dimensions_param = self.dimension if self.dimension != native and native else None
        api_key = api_key_from_env(api_key_env, what="embeddings model")
        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self.name = f"openai:{model}:{self.dimension}"
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=http_client,
        )

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """See :meth:`agentlab.rag.Embedder.embed`; rows are L2-normalised here.

        Raises:
            BackendError: the endpoint failed after the SDK's retries.
            ConfigError: the endpoint refused the key or the request.
            EmbeddingMismatch: the endpoint returned vectors of another length.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            for item in self._request(batch):
                vector = np.asarray(item.embedding, dtype=np.float32)
                if vector.shape != (self.dimension,):
                    raise EmbeddingMismatch(
                        f"{self.model} returned {vector.shape[0]}-d vectors, not "
                        f"{self.dimension}-d",
                        hint="pass the model's real dimension= (and re-index)",
                    )
                out[start + item.index] = vector
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def _request(self, batch: list[str]) -> list[Embedding]:
        where = self.base_url or "api.openai.com"
        try:
            if self._dimensions_param is not None:
                response = self._client.embeddings.create(
                    model=self.model,
                    input=batch,
                    encoding_format="float",
                    dimensions=self._dimensions_param,
                )
            else:
                response = self._client.embeddings.create(
                    model=self.model, input=batch, encoding_format="float"
                )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise ConfigError(
                f"{where} refused the embeddings key ({exc.status_code})",
                hint="check the key in the environment variable, and its access to the model",
            ) from None
        except (openai.BadRequestError, openai.NotFoundError) as exc:
            raise ConfigError(
                f"{where} refused the embeddings request for {self.model} ({exc.status_code}): "
                f"{_reason(exc)}",
                hint="check the model name and the dimension",
            ) from None
        except openai.APIError as exc:
            raise BackendError(
                f"{where}: embeddings failed: {type(exc).__name__}",
                hint="the endpoint is down or rate-limiting; try again later",
            ) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in data] != list(range(len(batch))):
            raise BackendError(f"{where} returned {len(data)} embeddings for {len(batch)} texts")
        return data


def _reason(exc: openai.APIStatusError) -> str:
    """The endpoint's error message (never the request, which may hold the texts)."""
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(message, str):
            return message[:200]
    return type(exc).__name__
