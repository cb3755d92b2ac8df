"""The parsed-cassette cache: served by content, never stale, never holding a bad cassette."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlab.core.errors import CassetteError
from agentlab.lab import cassette_cache
from agentlab.lab.cassettes import load_cassette
from tests.unit.lab.test_cassettes import META, MODEL_URL, PO_URL, edit, record


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.json")) if cache.exists() else []


def test_a_loaded_cassette_is_cached_and_the_cache_gives_the_same_cassette(
    tmp_path: Path,
) -> None:
    path, cache = tmp_path / "c.yaml", tmp_path / "cache"
    record(path)
    parsed = load_cassette(path, cache=cache)
    [entry] = entries(cache)
    assert entry.stem == cassette_cache.key_of(path.read_text(encoding="utf-8"))
    cached = load_cassette(path, cache=cache)
    assert cached.meta == parsed.meta == META
    assert [(i.request.uri, i.request.body, i.response, i.target) for i in cached.interactions] == [
        (i.request.uri, i.request.body, i.response, i.target) for i in parsed.interactions
    ]
    assert [i.request.uri for i in cached.interactions] == [MODEL_URL, PO_URL]


def test_the_second_load_reads_the_cache_not_the_yaml(tmp_path: Path) -> None:
    path, cache = tmp_path / "c.yaml", tmp_path / "cache"
    record(path)
    load_cassette(path, cache=cache)
    [entry] = entries(cache)
    data = json.loads(entry.read_text(encoding="utf-8"))
    data["metadata"]["agentlab"]["task_id"] = "from-the-cache"
    entry.write_text(json.dumps(data), encoding="utf-8")
    assert load_cassette(path, cache=cache).meta.task_id == "from-the-cache"  # type: ignore[union-attr]


def test_an_edited_cassette_is_never_served_from_the_cache(tmp_path: Path) -> None:
    path, cache = tmp_path / "c.yaml", tmp_path / "cache"
    record(path)
    load_cassette(path, cache=cache)
    edit(path, lambda data: data["metadata"]["agentlab"].update(task_id="edited"))
    assert load_cassette(path, cache=cache).meta.task_id == "edited"  # type: ignore[union-attr]
    assert len(entries(cache)) == 2


def test_a_broken_cassette_is_refused_and_not_cached(tmp_path: Path) -> None:
    path, cache = tmp_path / "c.yaml", tmp_path / "cache"
    record(path)
    edit(path, lambda data: data["interactions"][0]["response"].pop("status"))
    for _ in range(2):  # and the second time too: nothing was cached to skip the checks
        with pytest.raises(CassetteError, match=r"interaction 0: response\.status"):
            load_cassette(path, cache=cache)
    assert entries(cache) == []


def test_an_unreadable_cache_entry_is_parsed_again(tmp_path: Path) -> None:
    path, cache = tmp_path / "c.yaml", tmp_path / "cache"
    record(path)
    load_cassette(path, cache=cache)
    [entry] = entries(cache)
    entry.write_text("{not json", encoding="utf-8")
    assert load_cassette(path, cache=cache).meta == META


def test_a_cache_entry_of_another_shape_is_parsed_again(tmp_path: Path) -> None:
    path, cache = tmp_path / "c.yaml", tmp_path / "cache"
    record(path)
    load_cassette(path, cache=cache)
    [entry] = entries(cache)
    entry.write_text(json.dumps({"interactions": [{"request": {}}]}), encoding="utf-8")
    assert load_cassette(path, cache=cache).meta == META


def test_data_json_would_change_is_not_cached(tmp_path: Path) -> None:
    cassette_cache.write(tmp_path, "k", {"at": b"bytes"})
    cassette_cache.write(tmp_path, "t", {1: "an int key comes back as text"})
    assert entries(tmp_path) == []
    cassette_cache.write(tmp_path, "ok", {"a": [1, "two", None]})
    assert cassette_cache.read(tmp_path, "ok") == {"a": [1, "two", None]}


def test_the_cache_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AGENTLAB_CASSETTE_CACHE", raising=False)
    assert cassette_cache.default_cache_dir() == tmp_path / "home" / "cache" / "cassettes"
    monkeypatch.setenv("AGENTLAB_CASSETTE_CACHE", str(tmp_path / "elsewhere"))
    assert cassette_cache.default_cache_dir() == tmp_path / "elsewhere"
    for off in ("off", "false", "no", "0"):
        monkeypatch.setenv("AGENTLAB_CASSETTE_CACHE", off)
        assert cassette_cache.default_cache_dir() is None
