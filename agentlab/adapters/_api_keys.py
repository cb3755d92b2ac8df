"""API keys for OpenAI-compatible endpoints: from the environment, never from files."""

from __future__ import annotations

import os

from agentlab.core.errors import ConfigError

NO_KEY = "no-key"
"""What the SDK gets for an endpoint that needs no key (it insists on one; they ignore it)."""


def api_key_from_env(variable: str | None, *, what: str) -> str:
    """The key held by ``variable``, or :data:`NO_KEY` when ``variable`` is None.

    Args:
        variable: The environment variable's name; None for an endpoint that needs no key.
        what: What the key is for, for the message, e.g. ``"chat model"``.

    Raises:
        ConfigError: the variable is not set; the message names it, never a value.
    """
    if variable is None:
        return NO_KEY
    key = os.environ.get(variable, "")
    if not key:
        raise ConfigError(
            f"the {what}'s API key variable {variable} is not set",
            hint=f"export {variable}=... (agentlab reads keys from the environment only), or "
            "pass api_key_env=None for an endpoint that needs no key",
        )
    return key
