"""World fixtures: the embedded default, and errors that point at the wrong line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentlab.core.errors import ConfigError
from agentlab.world import default_world_fixture, load_world_fixture

MINIMAL = """\
seed: 1
erp:
  suppliers:
    - {supplier_id: SUP-000001, name: A, country: JP}
  inventory:
    - sku: PEN-1
      name: Pen
      on_hand: 1
      reorder_point: 2
      unit_price_usd: 1.5
      supplier_id: SUP-000001
mail: {known_domains: [example.com]}
"""
ITEM = "\n".join(MINIMAL.splitlines()[5:11]) + "\n"


def test_a_minimal_fixture_loads(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(MINIMAL)
    fixture = load_world_fixture(path)
    assert fixture.seed == 1
    assert fixture.latency_ms.erp == 0


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("SUP-000001, name", "SUP-12, name", ":4: field 'erp.suppliers.0.supplier_id'"),
        (
            "supplier_id: SUP-000001\n",
            "supplier_id: SUP-000009\n",
            ":11: field 'erp.inventory.0.supplier_id': no supplier SUP-000009",
        ),
        ("on_hand: 1", "on_hand: -1", ":8: field 'erp.inventory.0.on_hand'"),
        ("[example.com]", "[not a domain]", ":12: field 'mail.known_domains.0'"),
        ("seed: 1", "seed: 1\nlatency: {erp: 5}", ":2: field 'latency'"),
    ],
)
def test_a_bad_fixture_is_reported_with_file_line_and_field(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(MINIMAL.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_world_fixture(path)
    assert f"{path}{where}" in str(caught.value)


def test_a_sku_listed_twice_is_reported_on_its_second_line(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(MINIMAL.replace(ITEM, ITEM + ITEM))
    with pytest.raises(ConfigError) as caught:
        load_world_fixture(path)
    assert f"{path}:12: field 'erp.inventory.1.sku': PEN-1 appears twice" in str(caught.value)


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text("seed: 1\nerp: [\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:3: not valid YAML")):
        load_world_fixture(path)


def test_the_default_fixture_holds_what_the_suites_rely_on() -> None:
    fixture = default_world_fixture()
    suppliers = {s.supplier_id: s for s in fixture.erp.suppliers}
    assert len(suppliers) >= 8
    assert [s.supplier_id for s in suppliers.values() if not s.is_active] == ["SUP-000108"]
    assert len(fixture.erp.inventory) >= 25
    assert all(re.fullmatch(r"[A-Z0-9-]{3,32}", item.sku) for item in fixture.erp.inventory)
    assert any(item.on_hand < item.reorder_point for item in fixture.erp.inventory)
    assert "example.co.jp" in fixture.mail.known_domains
    assert len(fixture.mail.known_domains) >= 3
    assert len(fixture.helpdesk.tickets) >= 10
    assert {(w.name, w.version) for w in fixture.rpa.workflows} == {
        ("invoice_entry", "1.2.0"),
        ("invoice_entry", "1.3.0"),
        ("vendor_master_update", "2.0.1"),
    }
