"""Cassettes: recorded through the httpx transport, saved, loaded, played, and refused when
edited into nonsense. The systems behind the transport are ``httpx.MockTransport`` handlers,
so nothing leaves the process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
import yaml
from vcr.serialize import deserialize

from agentlab.core.errors import CassetteError
from agentlab.lab import cassette_yaml
from agentlab.lab.cassettes import (
    SAME_EFFECT,
    Cassette,
    CassetteMeta,
    CassetteTransport,
    is_write,
    latency_ms_of,
    load_cassette,
    unused_divergences,
)

KEY = "sk-proj-Abc123Def456Ghi789Jkl012"
META = CassetteMeta(
    suite="mini",
    task_id="po-toner",
    config="single",
    model="sim-large",
    is_simulated=True,
    note="recorded from agentlab's offline simulator",
    code_version="abc123",
    recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
    outcome={"success": True},
)
MODEL_URL = "http://simulator/v1/chat/completions"
PO_URL = "http://world/erp/purchase-orders"
CHAT = {"model": "sim-large", "messages": [{"role": "user", "content": "Order toner."}]}
ORDER = {"supplier_id": "SUP-000103", "items": [{"sku": "TONER-BK-05", "qty": 16}]}


def answer(request: httpx.Request) -> httpx.Response:
    """The model and the ERP, as a test double: each echoes what it was sent."""
    sent = json.loads(request.content or b"{}")
    if request.url.path.endswith("/chat/completions"):
        body = {"id": "chatcmpl-1", "choices": [{"message": {"content": "ok"}}], "echo": sent}
        return httpx.Response(200, json=body, headers={"openai-processing-ms": "250"})
    return httpx.Response(
        201,
        json={"po_id": "PO-000001", "echo": sent},
        headers={"x-agentlab-simulated-latency-ms": "40", "set-cookie": "session=s3cr3t"},
    )


def call(
    transport: CassetteTransport, requests: list[tuple[str, str, dict[str, Any], dict[str, str]]]
) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport) as client:
            return [
                await client.request(method, url, json=body, headers=headers)
                for method, url, body, headers in requests
            ]

    return asyncio.run(go())


def record(
    path: Path,
    requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] | None = None,
    *,
    handler: Callable[[httpx.Request], httpx.Response] = answer,
    secrets: tuple[str, ...] = (),
) -> Cassette:
    cassette = Cassette(path)
    transport = CassetteTransport(
        cassette, "record", inner=httpx.MockTransport(handler), secrets=secrets
    )
    call(
        transport,
        requests
        or [
            ("POST", MODEL_URL, CHAT, {}),
            ("POST", PO_URL, {**ORDER, "dry_run": False, "idempotency_key": "k" * 16}, {}),
        ],
    )
    cassette.save(META)
    return cassette


def test_a_recorded_cassette_loads_back_with_its_metadata(tmp_path: Path) -> None:
    path = tmp_path / "mini" / "single" / "sim-large" / "po-toner.yaml"
    record(path)
    loaded = load_cassette(path)
    assert loaded.meta == META
    assert [(i.request.method, i.request.uri, i.target) for i in loaded.interactions] == [
        ("POST", MODEL_URL, "model"),
        ("POST", PO_URL, "tool"),
    ]
    assert all(not i.is_played for i in loaded.interactions)
    assert loaded.interactions[1].response["status"]["code"] == 201


def test_a_loaded_cassette_plays_the_recorded_answers(tmp_path: Path) -> None:
    record(tmp_path / "c.yaml")
    cassette = load_cassette(tmp_path / "c.yaml")
    player = CassetteTransport(cassette, "play")
    po = {**ORDER, "dry_run": False, "idempotency_key": "k" * 16}
    chat, order = call(player, [("POST", MODEL_URL, CHAT, {}), ("POST", PO_URL, po, {})])
    assert chat.json()["echo"] == CHAT
    assert order.status_code == 201
    assert order.json()["po_id"] == "PO-000001"
    assert latency_ms_of(order) == 40.0
    assert latency_ms_of(chat) == 250.0
    assert cassette.unused(["model", "tool"]) == []
    assert cassette.divergences == []


def test_json_bodies_match_whatever_their_key_order(tmp_path: Path) -> None:
    record(tmp_path / "c.yaml", [("POST", PO_URL, {"a": 1, "b": [1, 2]}, {})])
    cassette = load_cassette(tmp_path / "c.yaml")
    reordered = b'{"b": [1, 2],  "a": 1}'

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=CassetteTransport(cassette, "play")) as client:
            return await client.post(
                PO_URL, content=reordered, headers={"content-type": "application/json"}
            )

    assert asyncio.run(go()).status_code == 201
    assert cassette.divergences == []


def test_a_request_the_cassette_lacks_is_not_sent_and_is_kept_as_a_divergence(
    tmp_path: Path,
) -> None:
    record(tmp_path / "c.yaml")
    cassette = load_cassette(tmp_path / "c.yaml")
    other = {**ORDER, "items": [{"sku": "TONER-BK-05", "qty": 17}], "dry_run": False}
    (order,) = call(CassetteTransport(cassette, "play"), [("POST", PO_URL, other, {})])
    assert order.status_code == 409
    assert "holds no such tool request" in order.json()["detail"]
    (divergence,) = cassette.divergences
    assert divergence.kind == "unrecorded"
    assert (divergence.target, divergence.method, divergence.path) == (
        "tool",
        "POST",
        "/erp/purchase-orders",
    )
    assert divergence.is_write
    assert '"qty": 17' in divergence.summary
    unused = unused_divergences(cassette, ["model", "tool"])
    assert [(d.kind, d.target) for d in unused] == [("unused", "model"), ("unused", "tool")]
    assert '"qty": 16' in unused[1].summary


def test_an_unrecorded_model_request_names_the_first_field_that_differs(tmp_path: Path) -> None:
    record(tmp_path / "c.yaml")
    cassette = load_cassette(tmp_path / "c.yaml")
    asked = {**CHAT, "messages": [{"role": "user", "content": "Order paper."}]}
    (reply,) = call(CassetteTransport(cassette, "play"), [("POST", MODEL_URL, asked, {})])
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "cassette_miss"
    (divergence,) = cassette.divergences
    assert divergence.target == "model"
    assert divergence.summary == ".messages[0].content: Order paper. (recorded Order toner.)"
    assert not divergence.is_write, "a model request changes no system: it is not a side effect"


def test_upgrade_matching_sets_idempotency_keys_aside(tmp_path: Path) -> None:
    record(tmp_path / "c.yaml")
    cassette = load_cassette(tmp_path / "c.yaml")
    same = {**ORDER, "dry_run": False, "idempotency_key": "z" * 16}
    (order,) = call(
        CassetteTransport(cassette, "play", match_on=SAME_EFFECT), [("POST", PO_URL, same, {})]
    )
    assert order.status_code == 201
    strict = load_cassette(tmp_path / "c.yaml")
    (refused,) = call(CassetteTransport(strict, "play"), [("POST", PO_URL, same, {})])
    assert refused.status_code == 409


def test_each_recorded_exchange_plays_once(tmp_path: Path) -> None:
    record(tmp_path / "c.yaml", [("POST", PO_URL, ORDER, {})])
    cassette = load_cassette(tmp_path / "c.yaml")
    first, second = call(
        CassetteTransport(cassette, "play"),
        [("POST", PO_URL, ORDER, {}), ("POST", PO_URL, ORDER, {})],
    )
    assert (first.status_code, second.status_code) == (201, 409)


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", None, False),
        ("POST", b'{"dry_run": true, "to": ["a@x"]}', False),
        ("POST", b'{"dry_run": false, "to": ["a@x"]}', True),
        ("PATCH", b'{"status": "resolved"}', True),
        ("POST", b"not json", True),
    ],
)
def test_what_counts_as_a_write(method: str, body: bytes | None, expected: bool) -> None:
    assert is_write(method, body) is expected


# --- credentials ------------------------------------------------------------------------------


def test_credentials_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    headers = {
        "Authorization": f"Bearer {KEY}",
        "api-key": KEY,
        "x-api-key": KEY,
        "Cookie": "session=s3cr3t",
        "OpenAI-Organization": "org-acme",
        "X-Stainless-OS": "Linux",
    }
    body = {**CHAT, "messages": [{"role": "user", "content": f"my key is {KEY}, use it"}]}
    record(path, [("POST", MODEL_URL, body, headers), ("POST", PO_URL, ORDER, {})])
    text = path.read_text(encoding="utf-8")
    assert "sk-" not in text
    assert "Bearer" not in text
    assert "s3cr3t" not in text  # the request's cookie and the response's set-cookie
    lowered = text.lower()
    for header in ("authorization", "api-key", "cookie", "openai-organization", "x-stainless"):
        assert f"{header}:" not in lowered, header
    stored = yaml.safe_load(text)["interactions"][0]["request"]["body"]
    # A JSON body is kept as YAML, so a changed prompt diffs line by line.
    assert stored["json"]["messages"][0]["content"] == "my key is <redacted>, use it"
    assert "content-type" in lowered  # ordinary headers stay


def test_a_response_echoing_a_key_is_scrubbed_too(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path, [("POST", PO_URL, {"note": KEY}, {})])
    text = path.read_text(encoding="utf-8")
    assert KEY not in text
    assert text.count("<redacted>") == 2  # the request body and the echo in the response


def test_named_secrets_are_scrubbed_whatever_their_shape(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    secret = "correct-horse-battery-staple"
    record(path, [("POST", PO_URL, {"password": secret}, {})], secrets=(secret,))
    text = path.read_text(encoding="utf-8")
    assert secret not in text
    assert "password: <redacted>" in text


def test_a_key_in_the_query_string_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path, [("GET", f"http://world/kb/search?q=vpn&api_key={KEY}", {}, {})])
    assert KEY not in path.read_text(encoding="utf-8")


# --- plain vcrpy ------------------------------------------------------------------------------


def test_plain_vcrpy_reads_the_cassette(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    requests, responses, metadata = deserialize(path.read_text(encoding="utf-8"), cassette_yaml)
    assert metadata["agentlab"]["is_simulated"] is True
    assert [r.uri for r in requests] == [MODEL_URL, PO_URL]
    assert [r["status"]["code"] for r in responses] == [200, 201]


def test_plain_vcrpy_plays_the_cassette(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path, [("POST", PO_URL, ORDER, {})])
    player = vcr.VCR(
        record_mode="none", match_on=["method", "scheme", "host", "port", "path", "query", "body"]
    )
    player.register_serializer("agentlab", cassette_yaml)
    with (
        player.use_cassette(str(path), serializer="agentlab") as cassette,
        httpx.Client() as client,
    ):
        response = client.post(PO_URL, json=ORDER)
        assert cassette.all_played
    assert response.status_code == 201
    assert response.json()["po_id"] == "PO-000001"


# --- cassettes edited into nonsense -----------------------------------------------------------


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def refused(path: Path) -> str:
    with pytest.raises(CassetteError) as caught:
        load_cassette(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_a_missing_cassette_says_how_to_record_it(tmp_path: Path) -> None:
    message = refused(tmp_path / "nowhere.yaml")
    assert "no cassette at" in message
    assert "--mode record" in message


def test_a_cassette_that_is_not_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = next(n for n, line in enumerate(lines) if line.strip().startswith("method:"))
    lines[broken] = lines[broken] + ": [unclosed"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = refused(path)
    assert f"{path}:{broken + 1}: not valid YAML" in message


def test_a_cassette_without_interactions_is_not_a_cassette(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    edit(path, lambda data: data.pop("interactions"))
    assert "not a cassette: expected a mapping with an `interactions` list" in refused(path)
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert "not a cassette" in refused(path)


def test_an_interaction_without_a_response_status_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    edit(path, lambda data: data["interactions"][1]["response"].pop("status"))
    assert "interaction 1: response.status: Field required" in refused(path)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["interactions"][0]["request"].pop("uri"), "interaction 0: request.uri"),
        (
            lambda d: d["interactions"][0]["response"]["status"].update(code=99),
            "interaction 0: response.status.code",
        ),
        (
            lambda d: d["interactions"][1]["response"].update(body={"string": 7}),
            "interaction 1: response.body.string",
        ),
        (lambda d: d["interactions"].append("nonsense"), "interaction 2: "),
    ],
    ids=["no-uri", "status-99", "body-number", "not-a-mapping"],
)
def test_a_mangled_interaction_is_named(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], where: str
) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    edit(path, change)
    assert where in refused(path)


def test_a_status_code_edited_into_text_is_refused_or_played_as_a_number(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    edit(path, lambda d: d["interactions"][1]["response"]["status"].update(code="201"))
    try:
        cassette = load_cassette(path)
    except CassetteError as exc:
        message = str(exc)
    else:
        po = {**ORDER, "dry_run": False, "idempotency_key": "k" * 16}
        player = CassetteTransport(cassette, "play")
        _, order = call(player, [("POST", MODEL_URL, CHAT, {}), ("POST", PO_URL, po, {})])
        assert order.status_code == 201
        assert order.is_success  # compares the code with numbers: a str crashes the run
        return
    assert str(path) in message


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["metadata"]["agentlab"].pop("code_version"), "metadata.agentlab.code_version"),
        (
            lambda d: d["metadata"]["agentlab"].update(is_simulated="maybe"),
            "metadata.agentlab.is_simulated",
        ),
        (
            lambda d: d["metadata"]["agentlab"].update(recorded_at="yesterday"),
            "metadata.agentlab.recorded_at",
        ),
        (lambda d: d["metadata"]["agentlab"].update(colour="red"), "metadata.agentlab.colour"),
        (lambda d: d.pop("metadata"), "metadata.agentlab"),
    ],
    ids=["no-code-version", "is-simulated", "recorded-at", "unknown-field", "no-metadata"],
)
def test_bad_metadata_is_named(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], where: str
) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    edit(path, change)
    assert where in refused(path)


def test_a_cassette_of_another_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    record(path)
    edit(path, lambda d: d.update(version=99))
    assert "cassette format version 99" in refused(path)


# --- what a review found ------------------------------------------------------------------------


def test_a_known_secret_never_reaches_the_file_through_headers_or_urls(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    secret = "correct-horse-battery-staple"

    def redirect_with_the_key(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={}, headers={"location": f"http://world/next?k={secret}", "x-token": secret}
        )

    headers = {"x-goog-api-key": secret, "x-session-id": secret, "x-note": f"key={secret}"}
    record(
        path,
        [("GET", f"http://world/kb/search?session={secret}", {}, headers)],
        handler=redirect_with_the_key,
        secrets=(secret,),
    )
    text = path.read_text(encoding="utf-8")
    assert secret not in text
    assert "x-note" in text  # an ordinary header stays, its value scrubbed


def test_replay_matches_the_data_classes_and_the_idempotency_key(tmp_path: Path) -> None:
    po = {**ORDER, "dry_run": False, "idempotency_key": "k" * 16}
    governed = {"Idempotency-Key": "k" * 16, "X-Data-Classes": "public,internal"}
    record(tmp_path / "c.yaml", [("POST", PO_URL, po, governed)])

    def replay(headers: dict[str, str]) -> int:
        player = CassetteTransport(load_cassette(tmp_path / "c.yaml"), "play")
        return call(player, [("POST", PO_URL, po, headers)])[0].status_code

    assert replay(governed) == 201
    # Wider data classes, or another key, is another request: it must not replay green.
    assert replay({**governed, "X-Data-Classes": "public,internal,restricted"}) == 409
    assert replay({**governed, "Idempotency-Key": "j" * 16}) == 409


def test_an_unrecorded_write_shows_at_its_dry_run(tmp_path: Path) -> None:
    record(tmp_path / "c.yaml", [("POST", MODEL_URL, CHAT, {})])
    cassette = load_cassette(tmp_path / "c.yaml")
    player = CassetteTransport(cassette, "play")
    (answer_,) = call(player, [("POST", PO_URL, {**ORDER, "dry_run": True}, {})])
    assert answer_.status_code == 409
    assert "[agentlab: not sent]" in answer_.json()["detail"]
    (divergence,) = cassette.divergences
    assert divergence.is_write
    assert divergence.is_dry_run
