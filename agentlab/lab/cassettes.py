"""Cassettes: one vcrpy YAML file per run, and the httpx transports that record and play them.

A cassette holds every HTTP exchange of one run with the model and the tools' systems.

vcrpy's usual way in is to patch httpx globally for the length of a ``with`` block, which
cannot tell apart the many runs a suite has in flight at once. Here each run's clients get a
transport of their own, built from vcrpy's parts: its ``Request``, its matchers, and its
YAML persister and format, so a cassette is an ordinary vcrpy cassette (``vcr.use_cassette``
plays it too) with an ``agentlab`` entry in its metadata saying who recorded it.

Credentials never reach a file: authorisation headers, cookies and API-key headers are
dropped from what is stored, and bodies are scrubbed of anything shaped like a key or a
token before they are written.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from vcr import matchers as vcr_matchers
from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request as VcrRequest
from vcr.serialize import CASSETTE_FORMAT_VERSION
from vcr.serializers import compat

from agentlab.core.errors import CassetteError
from agentlab.lab import cassette_cache, cassette_yaml
from agentlab.lab.requester import RequesterTurn
from agentlab.lab.results import Divergence

logger = logging.getLogger(__name__)

Target = Literal["model", "tool", "world"]

SECRET_HEADER = re.compile(r"(?i)auth|key|token|session|cookie|secret|password|credential")
"""Headers dropped from what is stored: anything named like a credential..."""
KEPT_HEADERS = frozenset({"idempotency-key"})
"""...except these, which carry no secret and which replay matches on."""
DROPPED_PREFIXES = ("x-stainless-", "openai-organization", "openai-project")
"""Client fingerprints and account names: not secrets, but noise that differs by machine."""
GOVERNANCE_HEADERS = ("idempotency-key", "x-data-classes")
"""Request headers a replay matches on: a change to the keys or to the data classes an actor
may see must not replay green."""
NOT_SENT = "[agentlab: not sent]"
"""Starts the answer to a request a cassette lacks, so the graders can tell a call that was
never sent from one a system refused."""
SECRET_PATTERNS = (
    re.compile(r"sk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\b[a-z][a-z0-9_]{0,63}\.\d{9,11}\.[0-9a-f]{8,}\.[0-9a-f]{64}\b"),  # vault tokens
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
)
REDACTED = "<redacted>"
LATENCY_HEADERS = ("x-agentlab-simulated-latency-ms", "openai-processing-ms")
"""Response headers that say how long an answer took (the simulator's and the world's modelled
latency; OpenAI's processing time). A run's virtual clock advances by them, and because they
are recorded, a replay reports the recorded times."""


class CassetteMeta(BaseModel):
    """What a cassette says about its recording (``metadata.agentlab``)."""

    model_config = ConfigDict(extra="forbid")

    suite: str
    task_id: str
    config: str
    model: str
    is_simulated: bool
    """True when the model was agentlab's offline simulator, never a vendor's model."""
    note: str = ""
    repetition: int = 0
    seed: int = 0
    code_version: str
    recorded_at: datetime
    outcome: dict[str, Any] = Field(default_factory=dict)
    """The run as graded when it was recorded: the baseline a replay is compared with."""
    turns: list[RequesterTurn] = Field(default_factory=list)
    """A multi-turn task's requester turns, as recorded: a replay tells the agent these."""


class _WireRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    method: str
    uri: str
    body: str | bytes | None = None
    headers: dict[str, list[str] | str] = Field(default_factory=dict)


class _WireStatus(BaseModel):
    model_config = ConfigDict(strict=True)

    code: int = Field(ge=100, le=599)
    message: str | None = None


class _WireResponse(BaseModel):
    model_config = ConfigDict(strict=True)

    status: _WireStatus
    headers: dict[str, list[str]] = Field(default_factory=dict)
    body: dict[Literal["string"], str | bytes]


class _WireInteraction(BaseModel):
    request: _WireRequest
    response: _WireResponse


@dataclass
class Interaction:
    """One recorded exchange."""

    request: VcrRequest
    response: dict[str, Any]
    target: Target
    is_played: bool = False


@dataclass
class Cassette:
    """A run's recorded exchanges, being played or being recorded.

    Args:
        path: Where the cassette lives.
        interactions: What it holds (loaded, or recorded so far).
        meta: Its ``agentlab`` metadata (None until a recording is finished).
    """

    path: Path
    interactions: list[Interaction] = field(default_factory=list)
    meta: CassetteMeta | None = None
    divergences: list[Divergence] = field(default_factory=list)

    def find(self, request: VcrRequest, match_on: tuple[Callable[..., Any], ...]) -> Interaction:
        """The first unplayed interaction that matches ``request``; marks it played.

        Raises:
            LookupError: none matches.
        """
        for interaction in self.interactions:
            if not interaction.is_played and vcr_matchers.requests_match(
                request, interaction.request, match_on
            ):
                interaction.is_played = True
                return interaction
        raise LookupError(request.uri)

    def unused(self, targets: Iterable[Target]) -> list[Interaction]:
        """Recorded exchanges with ``targets`` that were never played."""
        wanted = set(targets)
        return [i for i in self.interactions if not i.is_played and i.target in wanted]

    def save(self, meta: CassetteMeta) -> None:
        """Write the cassette (vcrpy's YAML format) with ``meta``; replaces any older one."""
        self.meta = meta
        self.path.parent.mkdir(parents=True, exist_ok=True)
        FilesystemPersister.save_cassette(
            str(self.path),
            {
                "requests": [i.request for i in self.interactions],
                "responses": [i.response for i in self.interactions],
                "metadata": {"agentlab": json.loads(meta.model_dump_json())},
            },
            serializer=cassette_yaml,
        )


def load_cassette(path: Path, *, cache: Path | None = None) -> Cassette:
    """Read a cassette, checking every interaction and the metadata.

    Args:
        path: The cassette.
        cache: A folder of already parsed cassettes (:mod:`agentlab.lab.cassette_cache`),
            keyed by content; None parses the YAML every time.

    Raises:
        CassetteError: the file is missing, is not YAML, or is not a cassette; the message
            names the file and the line or interaction at fault.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CassetteError(
            f"no cassette at {path}",
            hint="record it first: agentlab run SUITE --mode record (docs/lab.md)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path}: cannot read: {exc}") from None
    key = cassette_cache.key_of(text) if cache is not None else ""
    cached = cassette_cache.read(cache, key) if cache is not None else None
    if cached is not None:
        try:
            return _cassette(path, cached)
        except Exception:  # an entry of another shape: parse the file instead
            logger.debug("ignoring a cache entry for %s that does not read back", path)
    data = _parse(path, text)
    if cache is not None:
        cassette_cache.write(cache, key, data)  # before _cassette turns the bodies to bytes
    return _cassette(path, data)


def _cassette(path: Path, data: dict[str, Any]) -> Cassette:
    """The cassette from data that passed :func:`_parse`'s checks."""
    meta = _meta(path, data)
    interactions = []
    for raw in data["interactions"]:
        request = VcrRequest._from_dict(raw["request"])
        response = compat.convert_to_bytes(raw["response"])
        interactions.append(Interaction(request, response, _target_of(request.uri)))
    return Cassette(path, interactions, meta)


def _parse(path: Path, text: str) -> dict[str, Any]:
    """The cassette's data from its YAML text, every interaction and the metadata checked."""
    try:
        data = cassette_yaml.deserialize(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise CassetteError(
            f"{path}:{line}: not valid YAML: {exc.problem}",
            hint="re-record the cassette rather than editing it by hand",
        ) from None
    except yaml.YAMLError as exc:
        raise CassetteError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteError(
            f"{path}: not a cassette: expected a mapping with an `interactions` list",
            hint="re-record it: agentlab run SUITE --mode record",
        )
    if data.get("version") != CASSETTE_FORMAT_VERSION:
        raise CassetteError(
            f"{path}: cassette format version {data.get('version')!r}, expected "
            f"{CASSETTE_FORMAT_VERSION}"
        )
    for index, interaction in enumerate(data["interactions"]):
        try:
            _WireInteraction.model_validate(interaction)
        except ValidationError as exc:
            raise CassetteError(
                f"{path}: interaction {index}: {_first_error(exc)}",
                hint="re-record the cassette rather than editing it by hand",
            ) from None
    _meta(path, data)
    return data


def _meta(path: Path, data: dict[str, Any]) -> CassetteMeta:
    try:
        return CassetteMeta.model_validate((data.get("metadata") or {}).get("agentlab"))
    except ValidationError as exc:
        raise CassetteError(
            f"{path}: metadata.agentlab.{_first_error(exc)}",
            hint="cassettes are written by agentlab's recorder; re-record this one",
        ) from None


def _first_error(exc: ValidationError) -> str:
    """``field.path: message`` of a validation's first error."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _target_of(uri: str) -> Target:
    """Model requests go to ``/chat/completions``; ``/_world/`` is the grading endpoint."""
    path = httpx.URL(uri).path
    if path.endswith("/chat/completions") or path.endswith("/embeddings"):
        return "model"
    if path.startswith("/_world/"):
        return "world"
    return "tool"


def _body_without_keys(r1: VcrRequest, r2: VcrRequest) -> None:
    """Matcher for upgrade mode: JSON bodies equal once idempotency keys are set aside.

    A key is derived from the step's position in the run, which a candidate model may reach
    by another path; the call is the same side effect all the same.
    """
    if _strip_keys(_json_or_text(r1.body)) != _strip_keys(_json_or_text(r2.body)):
        raise AssertionError("bodies differ beyond their idempotency keys")


@lru_cache(maxsize=256)  # the runs in flight; parsed model requests are large
def _json_or_text(body: bytes | str | None) -> Any:
    """A body as its JSON value, or as text when it is not JSON (shared: never change it).

    Cached: a request is compared with every unplayed recorded one until one matches, and
    parsing the same bodies again for each comparison was a tenth of a replayed run.
    """
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return json.loads(text)
    except ValueError:
        return text


def _strip_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_keys(v) for k, v in value.items() if k != "idempotency_key"}
    if isinstance(value, list):
        return [_strip_keys(v) for v in value]
    return value


def _same_body(r1: VcrRequest, r2: VcrRequest) -> None:
    """Matcher: bodies equal as JSON values when both are JSON, else byte for byte.

    Cassettes keep JSON bodies as YAML, so the text read back need not be the text sent.
    """
    if _json_or_text(r1.body) != _json_or_text(r2.body):
        raise AssertionError("bodies differ")


def _same_governance(r1: VcrRequest, r2: VcrRequest) -> None:
    """Matcher: the same idempotency key and data classes (absent on both is the same)."""
    for name in GOVERNANCE_HEADERS:
        if (r1.headers.get(name) or "") != (r2.headers.get(name) or ""):
            raise AssertionError(f"{name} differs")


def _same_data_classes(r1: VcrRequest, r2: VcrRequest) -> None:
    """Matcher for upgrade: the same data classes (keys follow the step's position)."""
    if (r1.headers.get("x-data-classes") or "") != (r2.headers.get("x-data-classes") or ""):
        raise AssertionError("x-data-classes differs")


EXACT = (
    vcr_matchers.method,
    vcr_matchers.scheme,
    vcr_matchers.host,
    vcr_matchers.port,
    vcr_matchers.path,
    vcr_matchers.query,
    _same_body,
    _same_governance,
)
"""Replay matches a request on everything that defines it."""
SAME_EFFECT = (*EXACT[:-2], _body_without_keys, _same_data_classes)
"""Upgrade matches tool calls on what they do, not on their idempotency keys."""

Handling = Literal["record", "play", "pass"]


class CassetteTransport(httpx.AsyncBaseTransport):
    """Sends, records or plays one client's requests against a run's cassette.

    Args:
        cassette: The run's cassette.
        handling: ``record``: send through ``inner`` and keep the exchange; ``play``: answer
            from the cassette, and answer a request it lacks with an error (never sending
            it), noting a :class:`Divergence`; ``pass``: send through ``inner``, keep nothing.
        inner: The real transport (needed to record or pass).
        match_on: vcrpy matchers for ``play``.
        secrets: Values to scrub from what is recorded, besides the patterns.
    """

    def __init__(
        self,
        cassette: Cassette,
        handling: Handling,
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        match_on: tuple[Callable[..., Any], ...] = EXACT,
        secrets: Iterable[str] = (),
    ) -> None:
        if handling != "play" and inner is None:
            raise ValueError(f"a transport that must {handling} needs an inner transport")
        self.cassette = cassette
        self.handling = handling
        self.inner = inner
        self.match_on = match_on
        self.secrets = tuple(s for s in secrets if len(s) >= 8)

    async def aclose(self) -> None:
        """Close the real transport (a live run's connections to a world server)."""
        if self.inner is not None:
            await self.inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record, play or pass one request, as ``handling`` says."""
        body = await request.aread()
        if self.handling == "play":
            return self._play(request, body)
        assert self.inner is not None
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        if self.handling == "record":
            stored_request = VcrRequest(
                request.method,
                scrub_url(str(request.url), self.secrets),
                self._scrub(body),
                self._kept_headers(request.headers.multi_items()),
            )
            self.cassette.interactions.append(
                Interaction(
                    stored_request,
                    {
                        "status": {"code": response.status_code, "message": response.reason_phrase},
                        "headers": _header_lists(self._kept_headers(headers)),
                        "body": {"string": self._scrub(content)},
                    },
                    _target_of(str(request.url)),
                    is_played=True,
                )
            )
        return httpx.Response(
            response.status_code, headers=headers, content=content, request=request
        )

    def _play(self, request: httpx.Request, body: bytes) -> httpx.Response:
        wanted = VcrRequest(
            request.method, scrub_url(str(request.url), self.secrets), body, dict(request.headers)
        )
        try:
            found = self.cassette.find(wanted, self.match_on)
        except LookupError:
            return self._unrecorded(request, body)
        recorded = found.response
        headers = [(k, v) for k, values in recorded["headers"].items() for v in values]
        content = recorded["body"]["string"]
        if isinstance(content, str):
            content = content.encode("utf-8")
        return httpx.Response(
            recorded["status"]["code"], headers=headers, content=content, request=request
        )

    def _unrecorded(self, request: httpx.Request, body: bytes) -> httpx.Response:
        target = _target_of(str(request.url))
        divergence = Divergence(
            kind="unrecorded",
            target=target,
            method=request.method,
            path=request.url.path,
            is_write=target == "tool" and writes(request.method),
            is_dry_run=target == "tool" and is_dry_run(body),
            summary=_summary(body, self.cassette, target),
        )
        self.cassette.divergences.append(divergence)
        detail = (
            f"{NOT_SENT} {self.cassette.path.name} holds no such {target} request "
            "(agentlab replays recorded exchanges only; re-record to refresh the cassette)"
        )
        status = 400 if target == "model" else 409
        payload: dict[str, Any] = {"detail": detail}
        if target == "model":
            payload = {"error": {"message": detail, "type": "cassette_miss", "code": None}}
        return httpx.Response(status, json=payload, request=request)

    def _kept_headers(self, items: Iterable[tuple[str, str]]) -> dict[str, str]:
        """The headers worth keeping, credential-like ones dropped and values scrubbed."""
        kept = {}
        for name, value in items:
            lowered = name.lower()
            if lowered.startswith(DROPPED_PREFIXES):
                continue
            if SECRET_HEADER.search(lowered) and lowered not in KEPT_HEADERS:
                continue
            kept[name] = self._scrub(value.encode("utf-8")).decode("utf-8")
        return kept

    def _scrub(self, content: bytes) -> bytes:
        if not content:
            return content
        text = content.decode("utf-8", "replace")
        cleaned = text
        for pattern in SECRET_PATTERNS:
            cleaned = pattern.sub(REDACTED, cleaned)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, REDACTED)
        return content if cleaned == text else cleaned.encode("utf-8")


SECRET_QUERY_PARAMETERS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "auth", "sig", "signature", "password"}
)


def scrub_url(url: str, secrets: Iterable[str] = ()) -> str:
    """``url`` with its credentials redacted.

    Those are credential-like query parameters, key-shaped values, and ``secrets``.
    """
    parsed = httpx.URL(url)
    if parsed.query:
        params = [
            (k, REDACTED if k.lower() in SECRET_QUERY_PARAMETERS else v)
            for k, v in parsed.params.multi_items()
        ]
        url = str(parsed.copy_with(params=params))
    for pattern in SECRET_PATTERNS:
        url = pattern.sub(REDACTED, url)
    for secret in secrets:
        url = url.replace(secret, REDACTED)
    return url


def writes(method: str) -> bool:
    """True for a request method that writes (a commit or its dry-run), not a read."""
    return method.upper() not in ("GET", "HEAD", "OPTIONS")


def is_dry_run(body: bytes | str | None) -> bool:
    """True for a write request that only previews (``"dry_run": true`` in its body)."""
    payload = _json_or_text(body)
    return isinstance(payload, dict) and payload.get("dry_run") is True


def is_write(method: str, body: bytes | str | None) -> bool:
    """True for a request that changes a system: not a read, not a dry-run."""
    return writes(method) and not is_dry_run(body)


def unused_divergences(cassette: Cassette, targets: Iterable[Target]) -> list[Divergence]:
    """The recorded exchanges with ``targets`` that the run never made."""
    return [
        Divergence(
            kind="unused",
            target=i.target,
            method=i.request.method,
            path=httpx.URL(i.request.uri).path,
            is_write=i.target == "tool" and writes(i.request.method),
            is_dry_run=i.target == "tool" and is_dry_run(i.request.body),
            summary=_brief_body(i.request.body),
        )
        for i in cassette.unused(targets)
    ]


def _summary(body: bytes, cassette: Cassette, target: Target) -> str:
    if target != "model":
        return _brief_body(body)
    # Model requests are long; say where the first difference from the nearest recorded
    # request of the same kind lies.
    asked = _json_or_text(body)
    recorded = [_json_or_text(i.request.body) for i in cassette.interactions if i.target == "model"]
    if not recorded or not isinstance(asked, dict):
        return "(no recorded model request to compare with)"
    nearest = max(recorded, key=lambda r: _common_messages(asked, r))
    return _first_difference(nearest, asked)


def _common_messages(a: Mapping[str, Any], b: Any) -> int:
    if not isinstance(b, dict):
        return -1
    count = 0
    for x, y in zip(a.get("messages", []), b.get("messages", []), strict=False):
        if x != y:
            break
        count += 1
    return count


def _first_difference(recorded: Any, asked: Any, where: str = "") -> str:
    if isinstance(recorded, dict) and isinstance(asked, dict):
        for key in sorted(set(recorded) | set(asked), key=str):
            if recorded.get(key) != asked.get(key):
                return _first_difference(recorded.get(key), asked.get(key), f"{where}.{key}")
    if isinstance(recorded, list) and isinstance(asked, list):
        for index, (x, y) in enumerate(zip(recorded, asked, strict=False)):
            if x != y:
                return _first_difference(x, y, f"{where}[{index}]")
        if len(recorded) != len(asked):
            return f"{where or 'body'}: {len(asked)} items, recorded {len(recorded)}"
    return f"{where or 'body'}: {_clip(asked)} (recorded {_clip(recorded)})"


def _brief_body(body: bytes | str | None) -> str:
    payload = _json_or_text(body)
    if payload is None or payload == "":
        return ""
    if isinstance(payload, str):
        return _clip(payload, 160)
    return _clip(json.dumps(_strip_keys(payload), sort_keys=True), 160)


def _clip(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _header_lists(headers: Mapping[str, str]) -> dict[str, list[str]]:
    return {k: [v] for k, v in headers.items()}


def latency_ms_of(response: httpx.Response) -> float:
    """The modelled or reported latency a response carries, 0 when it carries none."""
    for name in LATENCY_HEADERS:
        value = response.headers.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return 0.0
    return 0.0
