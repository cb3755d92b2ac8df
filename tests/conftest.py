"""Shared test set-up: markers by folder, no network, AGENTLAB_HOME in a temp dir."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.contracts")  # before the contracts are imported

from agentlab.core.clock import TickingClock  # noqa: E402
from agentlab.core.ids import IdFactory  # noqa: E402

TESTS = Path(__file__).parent
MARKER_OF_FOLDER = {
    "unit": "unit",
    "contracts": "unit",
    "integration": "integration",
    "notebooks": "notebooks",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="also run tests marked live")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder; skip ``live`` tests unless --live is given."""
    skip_live = pytest.mark.skip(reason="needs --live")
    for item in items:
        folder = Path(item.fspath).relative_to(TESTS).parts[0]
        if folder in MARKER_OF_FOLDER:
            item.add_marker(MARKER_OF_FOLDER[folder])
        if "live" in item.keywords and not config.getoption("--live"):
            item.add_marker(skip_live)


def _is_local(address: object) -> bool:
    if isinstance(address, tuple):
        host = str(address[0])
    else:  # a Unix socket path
        return True
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any connection that would leave this machine: tests never need the network."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise OSError(f"test tried to reach {address!r}; tests stay on this machine")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def agentlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own AGENTLAB_HOME, so no test sees another's runs."""
    home = tmp_path / "agentlab_home"
    monkeypatch.setenv("AGENTLAB_HOME", str(home))
    monkeypatch.delenv("AGENTLAB_STORE_URL", raising=False)
    return home


@pytest.fixture
def clock() -> TickingClock:
    """A clock that starts at 2026-01-01 UTC and ticks 1 ms per read."""
    return TickingClock()


@pytest.fixture
def ids() -> IdFactory:
    """Ids that are the same on every run."""
    return IdFactory.seeded(1234)
