"""A content-addressed cache of parsed cassettes, so a replay does not parse YAML each time.

Parsing a cassette's YAML (even with libyaml) costs about 12 ms for an average multi-agent
run, a third of the run's replay; reading the same data back as JSON costs a fortieth of
that. After a cassette has been parsed and checked, its data is written as JSON under
``<cache>/<sha256 of the YAML text>.json``; the next load of the same text reads that.

The key is the file's content (and :data:`CACHE_FORMAT`), never its name or mtime, so an
edited or re-recorded cassette can never be served stale: its text hashes elsewhere. Only
data that passed the cassette checks is cached. Entries are disposable: delete the folder
at any time (each re-recording of the helpdesk suite leaves about 20 MB of old entries).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agentlab._version import __version__
from agentlab.core.settings import Settings

CACHE_FORMAT = f"agentlab-cassette-cache-1/{__version__}"
"""Part of every key: a new agentlab version (whose checks may differ) or a new shape of
what :func:`agentlab.lab.cassette_yaml.deserialize` returns (bump the number) ignores every
older entry."""
OFF = frozenset({"off", "none", "0", "false", "no"})


def default_cache_dir() -> Path | None:
    """The cache folder: ``$AGENTLAB_CASSETTE_CACHE`` (``off`` for none), or the default.

    The default is ``<AGENTLAB_HOME>/cache/cassettes``.
    """
    value = os.environ.get("AGENTLAB_CASSETTE_CACHE", "")
    if value.lower() in OFF:
        return None
    return Path(value) if value else Settings().home / "cache" / "cassettes"


def key_of(text: str) -> str:
    """The cache key of a cassette's YAML text."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def read(cache: Path, key: str) -> Any | None:
    """The cached data for ``key``, or None when there is none (or it cannot be read)."""
    try:
        raw = (cache / f"{key}.json").read_bytes()
        return json.loads(raw)
    except (OSError, ValueError):
        return None


def write(cache: Path, key: str, data: Any) -> None:
    """Store ``data`` under ``key``, atomically; a cache that cannot be written is skipped.

    Data that JSON would not give back as it was (a YAML timestamp, bytes) is not cached.
    """
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return
    if json.loads(text) != data:
        return
    temporary: Path | None = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=cache, suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            handle.write(text)
        temporary.replace(cache / f"{key}.json")
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
