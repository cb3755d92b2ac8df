"""What a model's tokens cost: a price table kept in data, not code.

Prices live in YAML (``agentlab/llm/prices.yaml`` by default), per model and per million
tokens, so a price change or a new model is an edit to a file, not a release. Cost is
computed from the usage every answer reports::

    (prompt - cached) x input + cached x cached_input + completion x output

Reasoning tokens are part of the completion and are billed at the output price, as vendors
bill them.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Self, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from agentlab.core.config import load_yaml_model
from agentlab.core.errors import ConfigError
from agentlab.llm.protocol import Usage

DEFAULT_PRICES_PATH = Path(__file__).with_name("prices.yaml")
"""The embedded price table: the simulator's profiles and a few OpenAI models."""

_DATED = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")  # gpt-4.1-mini-2025-04-14
_PER_TOKEN = 1_000_000

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ModelPrice(BaseModel):
    """One model's list price, in US dollars per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    input_usd_per_mtok: float = Field(ge=0)
    """Prompt tokens that the endpoint did not serve from its cache."""
    cached_input_usd_per_mtok: float | None = Field(default=None, ge=0)
    """Prompt tokens served from the cache; None: no discount, the input price applies."""
    output_usd_per_mtok: float = Field(ge=0)
    """Completion tokens, reasoning tokens included."""
    source: str = Field(min_length=1)
    """Where the price comes from: the vendor's pricing page, or why it is made up."""
    as_of: date
    """The day the price was read; list prices change, so check it when it is old."""

    def cost_usd(self, usage: Usage) -> float:
        """What ``usage`` costs at this price."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = (
            self.input_usd_per_mtok
            if self.cached_input_usd_per_mtok is None
            else self.cached_input_usd_per_mtok
        )
        micro_usd = (
            (usage.prompt_tokens - cached) * self.input_usd_per_mtok
            + cached * cached_price
            + usage.completion_tokens * self.output_usd_per_mtok
        )
        return micro_usd / _PER_TOKEN


class PriceTable(BaseModel):
    """Prices per model, read from YAML; turns an answer's usage into US dollars.

    Load one with :meth:`load`; the file's ``models`` mapping is keyed by model name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    models: dict[ModelName, ModelPrice] = Field(min_length=1)
    """Model name (as the endpoint spells it, without a date suffix) to its price."""
    _path: str = PrivateAttr(default="<prices>")

    @classmethod
    def load(cls, path: str | Path | None = None) -> Self:
        """Read a price table from YAML.

        Args:
            path: The file; the embedded ``agentlab/llm/prices.yaml`` when None.

        Raises:
            ConfigError: the file is missing, is not YAML, or a field is wrong; the message
                names ``file:line``.
        """
        if path is None:
            return cast(Self, _embedded_table(cls))
        source = Path(path)
        table = load_yaml_model(source, cls)
        table._path = str(source)
        return table

    @property
    def path(self) -> str:
        """The file the table was read from (``<prices>`` when built in code)."""
        return self._path

    def resolve(self, model: str) -> str | None:
        """The table's entry for ``model``: its own, or its base name's for a dated name.

        Returns:
            The entry's name, or None when the table has no price for the model.
        """
        if model in self.models:
            return model
        dated = _DATED.match(model)
        if dated and dated["base"] in self.models:
            return dated["base"]
        return None

    def price_of(self, model: str) -> ModelPrice:
        """The price of ``model`` (a dated name resolves to its base entry).

        Raises:
            ConfigError: the table has no price for the model; the message names the model
                and the price file and says how to add it.
        """
        entry = self.resolve(model)
        if entry is None:
            raise ConfigError(
                f"no price for model {model!r} in {self._path}",
                hint=(
                    f"add '{model}:' under 'models:' with input_usd_per_mtok, "
                    "cached_input_usd_per_mtok, output_usd_per_mtok, source and as_of, in "
                    "your own copy of the file loaded with PriceTable.load(path); "
                    "see docs/models.md"
                ),
            )
        return self.models[entry]

    def cost_usd(self, model: str, usage: Usage) -> float:
        """What ``usage`` cost on ``model``, in US dollars.

        Cached prompt tokens are billed at the cached price, the other prompt tokens at the
        input price, and completion tokens (reasoning included) at the output price.

        Raises:
            ConfigError: the table has no price for the model.
        """
        return self.price_of(model).cost_usd(usage)


@cache
def _embedded_table(cls: type[PriceTable]) -> PriceTable:
    """The embedded table, read once per process.

    Every model client wants it, and a replayed suite builds hundreds of clients (parsing
    the YAML each time cost 12 ms a run). The table is frozen, so sharing it is safe.
    """
    table = load_yaml_model(DEFAULT_PRICES_PATH, cls)
    table._path = str(DEFAULT_PRICES_PATH)
    return table
