"""The sandbox world: ERP, mail, helpdesk, knowledge base and RPA, served over HTTP."""

from agentlab.world.app import build_world_app
from agentlab.world.errors import WorldError
from agentlab.world.fixture import (
    WorldFixture,
    default_world_fixture,
    load_world_fixture,
)
from agentlab.world.state import Fault, World, diff_snapshots

__all__ = [
    "Fault",
    "World",
    "WorldError",
    "WorldFixture",
    "build_world_app",
    "default_world_fixture",
    "diff_snapshots",
    "load_world_fixture",
]
