"""The world's starting state: suppliers, stock, mail domains, tickets, RPA workflows.

A fixture is YAML validated by these models (``load_world_fixture`` reports ``file:line``).
The embedded default is ``fixtures/default.yaml``; suites may bring their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentlab.core.config import load_yaml_model

TicketStatus = Literal["open", "pending", "resolved"]
Priority = Literal["low", "normal", "high", "urgent"]
InputType = Literal["str", "int", "float", "bool"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Supplier(_Model):
    """A supplier in the ERP's vendor master."""

    supplier_id: Annotated[str, Field(pattern=r"^SUP-[0-9]{6}$")]
    name: str
    country: str
    is_active: bool = True


class StockItem(_Model):
    """An SKU in the ERP: stock, price and who supplies it."""

    sku: Annotated[str, Field(pattern=r"^[A-Z0-9-]{3,32}$")]
    name: str
    on_hand: int = Field(ge=0)
    reorder_point: int = Field(ge=0)
    unit_price_usd: float = Field(gt=0)
    supplier_id: str


class Ticket(_Model):
    """A helpdesk ticket as the fixture starts it."""

    ticket_id: Annotated[str, Field(pattern=r"^TCK-[0-9]{6}$")]
    title: str
    body: str
    requester: str
    status: TicketStatus = "open"
    priority: Priority = "normal"


class Workflow(_Model):
    """A versioned, deterministic RPA workflow."""

    name: str
    version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    description: str
    inputs: dict[str, InputType]
    failure_rate: float = Field(default=0.1, ge=0, le=1)
    """Share of input combinations that fail, chosen by hashing (seed, inputs)."""
    error_codes: tuple[str, ...] = ("E_TIMEOUT", "E_ELEMENT_NOT_FOUND")
    screens: tuple[str, ...] = ()
    """The screens the flow walks through, for the screenshot of the last one."""


class Erp(_Model):
    """The ERP's vendor master and stock."""

    suppliers: tuple[Supplier, ...]
    inventory: tuple[StockItem, ...]


class Mail(_Model):
    """The mail system."""

    known_domains: tuple[str, ...]
    """Domains the mail system can deliver to; other recipients bounce (422)."""


class Helpdesk(_Model):
    """The helpdesk's tickets."""

    tickets: tuple[Ticket, ...] = ()


class Rpa(_Model):
    """The RPA runner's workflows."""

    workflows: tuple[Workflow, ...] = ()


class Latency(_Model):
    """Simulated service time per system, in milliseconds."""

    erp: int = Field(default=0, ge=0)
    mail: int = Field(default=0, ge=0)
    helpdesk: int = Field(default=0, ge=0)
    kb: int = Field(default=0, ge=0)
    rpa: int = Field(default=0, ge=0)


class WorldFixture(_Model):
    """Everything the world starts from."""

    seed: int = 0
    """Drives every choice the world makes (RPA outcomes), so runs are reproducible."""
    erp: Erp
    mail: Mail
    helpdesk: Helpdesk = Helpdesk()
    rpa: Rpa = Rpa()
    latency_ms: Latency = Latency()
    kb_folder: str | None = None
    """Markdown knowledge-base articles (YAML front matter); relative to the fixture file.
    None: the corpus shipped in ``agentlab/world/fixtures/kb``."""


DEFAULT_FIXTURE = Path(__file__).parent / "fixtures" / "default.yaml"
DEFAULT_KB = Path(__file__).parent / "fixtures" / "kb"


def load_world_fixture(path: str | Path) -> WorldFixture:
    """Read and validate a world fixture.

    Raises:
        ConfigError: naming ``file:line`` and the field of every problem.
    """
    return load_yaml_model(Path(path), WorldFixture)


def default_world_fixture() -> WorldFixture:
    """The embedded fixture."""
    return load_world_fixture(DEFAULT_FIXTURE)


def kb_folder_of(fixture: WorldFixture, fixture_path: Path | None) -> Path:
    """Where the fixture's knowledge-base articles are."""
    if fixture.kb_folder is None:
        return DEFAULT_KB
    folder = Path(fixture.kb_folder)
    if not folder.is_absolute() and fixture_path is not None:
        folder = fixture_path.parent / folder
    return folder
