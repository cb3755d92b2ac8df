"""Resources other than HTTP reach a tool through its context, by name and type."""

from __future__ import annotations

import httpx
import pytest

from agentlab.core.errors import ConfigError
from agentlab.tools import ToolContext


class Sandbox:
    pass


def test_a_resource_is_found_by_name_and_checked_by_type() -> None:
    sandbox = Sandbox()
    ctx = ToolContext(http=httpx.AsyncClient(), actor="alice", resources={"sandbox": sandbox})
    assert ctx.resource("sandbox", Sandbox) is sandbox
    with pytest.raises(ConfigError, match=r"needs the 'sandbox' resource \(str\)"):
        ctx.resource("sandbox", str)


def test_a_missing_resource_is_a_set_up_error_that_says_how_to_pass_it() -> None:
    ctx = ToolContext(http=httpx.AsyncClient(), actor="alice")
    with pytest.raises(ConfigError) as caught:
        ctx.resource("browser", Sandbox)
    assert "Executor(resources={'browser': ...})" in str(caught.value)
