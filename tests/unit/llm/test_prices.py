"""The price table: data in YAML, cost from usage, errors that name the file and line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError
from agentlab.llm import PriceTable, Usage
from agentlab.llm.prices import DEFAULT_PRICES_PATH

TABLE = """\
models:
  big:
    input_usd_per_mtok: 2.00
    cached_input_usd_per_mtok: 0.50
    output_usd_per_mtok: 8.00
    source: a test
    as_of: 2026-01-01
  plain:
    input_usd_per_mtok: 1.00
    output_usd_per_mtok: 3.00
    source: a test, no cache discount
    as_of: 2026-01-01
"""


def line_of(text: str, fragment: str) -> int:
    """The 1-based number of the first line of ``text`` that contains ``fragment``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.fixture
def table(tmp_path: Path) -> PriceTable:
    path = tmp_path / "prices.yaml"
    path.write_text(TABLE, encoding="utf-8")
    return PriceTable.load(path)


def test_cached_prompt_tokens_cost_the_cached_price_and_reasoning_the_output_price(
    table: PriceTable,
) -> None:
    usage = Usage(
        prompt_tokens=1_000_000,
        cached_tokens=400_000,
        completion_tokens=100_000,
        reasoning_tokens=60_000,
    )
    # 600k uncached x $2 + 400k cached x $0.50 + 100k completion (reasoning in it) x $8
    assert table.cost_usd("big", usage) == pytest.approx(1.20 + 0.20 + 0.80)


def test_without_a_cached_price_cached_tokens_cost_the_input_price(table: PriceTable) -> None:
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=500_000, completion_tokens=0)
    assert table.cost_usd("plain", usage) == pytest.approx(1.00)


def test_a_dated_model_name_is_priced_by_its_base_entry(table: PriceTable) -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=1000)
    assert table.resolve("big-2025-04-14") == "big"
    assert table.cost_usd("big-2025-04-14", usage) == table.cost_usd("big", usage)
    assert table.resolve("big-preview") is None


def test_an_unknown_model_names_the_model_and_the_file_and_says_how_to_add_it(
    table: PriceTable,
) -> None:
    with pytest.raises(ConfigError) as caught:
        table.cost_usd("llama-3-70b", Usage(prompt_tokens=1, completion_tokens=1))
    assert "'llama-3-70b'" in caught.value.message
    assert table.path in caught.value.message
    assert caught.value.hint is not None
    assert "input_usd_per_mtok" in caught.value.hint
    assert "docs/models.md" in caught.value.hint


def test_a_wrong_field_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    text = TABLE.replace("output_usd_per_mtok: 3.00", "output_usd_per_mtok: -3")
    path.write_text(text)
    line = line_of(text, "output_usd_per_mtok: -3")
    with pytest.raises(ConfigError, match=rf"{path}:{line}: field 'models.plain.output_usd_per_"):
        PriceTable.load(path)


def test_a_misspelt_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    text = TABLE.replace("input_usd_per_mtok: 1.00", "inptu_usd_per_mtok: 1.00")
    path.write_text(text)
    line = line_of(text, "inptu_usd_per_mtok")
    with pytest.raises(ConfigError, match=rf"{path}:{line}: field '.*inptu_usd_per_mtok'"):
        PriceTable.load(path)


def test_broken_yaml_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(TABLE.replace("  plain:", "  plain: [", 1))
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        PriceTable.load(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        PriceTable.load(tmp_path / "nope.yaml")


def test_the_embedded_table_prices_the_simulator_and_openai_models() -> None:
    table = PriceTable.load()
    assert table.path == str(DEFAULT_PRICES_PATH)
    for name in ("sim-large", "sim-small", "gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini"):
        assert table.resolve(name) == name
    assert "simulated" in table.models["sim-large"].source
    assert table.models["gpt-4.1-mini"].as_of <= date.today()
    usage = Usage(prompt_tokens=10_000, completion_tokens=1_000)
    # the large profile costs more than the small one, as large models do
    assert table.cost_usd("sim-large", usage) > table.cost_usd("sim-small", usage)
    assert table.resolve("gpt-4.1-mini-2025-04-14") == "gpt-4.1-mini"
