"""The throwaway servers of agentlab.adapters.local_servers say why they could not start."""

from __future__ import annotations

import pytest

from agentlab.adapters.local_servers import local_redis
from agentlab.core.errors import BackendError, MissingDependency


def test_a_redis_that_exits_at_once_is_reported_with_its_exit_code() -> None:
    with pytest.raises(BackendError, match="exited with 1"), local_redis("false"):
        pass


def test_a_missing_redis_server_names_the_package_to_install() -> None:
    with (
        pytest.raises(MissingDependency, match="apt-get install redis-server"),
        local_redis("no-such-redis-server"),
    ):
        pass
