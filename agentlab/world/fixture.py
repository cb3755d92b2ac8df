"""The world's starting state: suppliers, stock, mail domains, tickets, RPA workflows.

A fixture is YAML validated by these models (``load_world_fixture`` reports ``file:line``).
The embedded default is ``fixtures/default.yaml``; suites may bring their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agentlab.core.config import load_yaml_model

TicketStatus = Literal["open", "pending", "resolved"]
Priority = Literal["low", "normal", "high", "urgent"]
InputType = Literal["str", "int", "float", "bool"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _refuse(title: str, problems: list[tuple[tuple[str | int, ...], str, object]]) -> None:
    """Raise the problems found across records, each at its own location (so its own line)."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("world_fixture", message),
                    loc=loc,
                    input=value,
                )
                for loc, message, value in problems
            ],
        )


def _duplicates(
    collection: str, field: str, values: Iterable[object]
) -> list[tuple[tuple[str | int, ...], str, object]]:
    seen: set[object] = set()
    problems: list[tuple[tuple[str | int, ...], str, object]] = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(((collection, index, field), f"{value} appears twice", value))
        seen.add(value)
    return problems


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
    inputs: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")], InputType]
    """Input names and their types; a run must give exactly these."""
    failure_rate: float = Field(default=0.1, ge=0, le=1)
    """Share of input combinations that fail, chosen by hashing (seed, workflow, inputs)."""
    error_codes: Annotated[
        tuple[Annotated[str, Field(pattern=r"^E_[A-Z0-9_]{1,60}$")], ...], Field(min_length=1)
    ] = ("E_TIMEOUT", "E_ELEMENT_NOT_FOUND")
    """The codes a failed run reports, one picked by the same hash."""
    screens: tuple[str, ...] = ()
    """The screens the flow walks through, for the screenshot of the last one."""


class Erp(_Model):
    """The ERP's vendor master and stock."""

    suppliers: tuple[Supplier, ...]
    inventory: tuple[StockItem, ...]

    @model_validator(mode="after")
    def _references_hold(self) -> Self:
        known = {s.supplier_id for s in self.suppliers}
        problems = _duplicates("suppliers", "supplier_id", (s.supplier_id for s in self.suppliers))
        problems += _duplicates("inventory", "sku", (i.sku for i in self.inventory))
        problems += [
            (("inventory", index, "supplier_id"), f"no supplier {i.supplier_id}", i.supplier_id)
            for index, i in enumerate(self.inventory)
            if i.supplier_id not in known
        ]
        _refuse("Erp", problems)
        return self


class Mail(_Model):
    """The mail system."""

    known_domains: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")], ...]
    """Domains the mail system can deliver to; other recipients bounce (422)."""


class Helpdesk(_Model):
    """The helpdesk's tickets."""

    tickets: tuple[Ticket, ...] = ()

    @model_validator(mode="after")
    def _ids_are_unique(self) -> Self:
        _refuse(
            "Helpdesk", _duplicates("tickets", "ticket_id", (t.ticket_id for t in self.tickets))
        )
        return self


class Rpa(_Model):
    """The RPA runner's workflows."""

    workflows: tuple[Workflow, ...] = ()

    @model_validator(mode="after")
    def _versions_are_unique(self) -> Self:
        _refuse(
            "Rpa",
            _duplicates("workflows", "version", (f"{w.name} {w.version}" for w in self.workflows)),
        )
        return self


class Latency(_Model):
    """Simulated service time per system, in milliseconds."""

    erp: int = Field(default=0, ge=0)
    mail: int = Field(default=0, ge=0)
    helpdesk: int = Field(default=0, ge=0)
    kb: int = Field(default=0, ge=0)
    rpa: int = Field(default=0, ge=0)


class Web(_Model):
    """The web UIs (supplier portal, helpdesk UI) that a browser tool operates."""

    layout_version: Literal[1, 2] = 1
    """Which layout the supplier pages use. Version 2 renames the contact form's element ids,
    so a selector written against version 1 breaks (the brittleness of UI automation)."""
    supplier_notes: dict[Annotated[str, Field(pattern=r"^SUP-[0-9]{6}$")], str] = Field(
        default_factory=dict
    )
    """A notice each supplier posts on its portal page, verbatim. The embedded fixture's
    carries an injected instruction, for the injection suites."""
    supplier_websites: dict[Annotated[str, Field(pattern=r"^SUP-[0-9]{6}$")], str] = Field(
        default_factory=dict
    )
    """A link to each supplier's own website (off the sandbox's domain, on purpose)."""


class WorldFixture(_Model):
    """Everything the world starts from."""

    seed: int = 0
    """Drives every choice the world makes (RPA outcomes), so runs are reproducible."""
    erp: Erp
    mail: Mail
    helpdesk: Helpdesk = Helpdesk()
    rpa: Rpa = Rpa()
    latency_ms: Latency = Latency()
    web: Web = Web()
    kb_folder: str | None = None
    """Markdown knowledge-base articles (YAML front matter); relative to the fixture file.
    None: the corpus shipped in ``agentlab/world/fixtures/kb``."""
    kb_extra_folder: str | None = None
    """More articles, added to ``kb_folder``'s (a suite's own pages, such as the injection
    suite's poisoned ones); relative to the fixture file."""


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


def kb_extra_folder_of(fixture: WorldFixture, fixture_path: Path | None) -> Path | None:
    """Where the fixture's extra articles are, if it has any."""
    if fixture.kb_extra_folder is None:
        return None
    folder = Path(fixture.kb_extra_folder)
    if not folder.is_absolute() and fixture_path is not None:
        folder = fixture_path.parent / folder
    return folder


def kb_folder_of(fixture: WorldFixture, fixture_path: Path | None) -> Path:
    """Where the fixture's knowledge-base articles are."""
    if fixture.kb_folder is None:
        return DEFAULT_KB
    folder = Path(fixture.kb_folder)
    if not folder.is_absolute() and fixture_path is not None:
        folder = fixture_path.parent / folder
    return folder
