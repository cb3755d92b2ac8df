"""The JSON APIs' token check: a system given a key takes only short-lived, scoped tokens.

With ``World(api_keys=...)``, a request to ``/<system>/...`` must carry
``Authorization: Bearer <token>``: a token the vault signed for ``<system>_api``, not yet
expired, carrying ``<system>:read`` for a read (``GET``) or ``<system>:write`` for a change.
A missing, forged or expired token is a 401; a token of another credential, or without the
scope the request needs, is a 403 -- the system says which, never the token itself.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentlab.core.tokens import read_claims, verify_token
from agentlab.world.state import SYSTEMS, World

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refusal(world: World, system: str, method: str, authorization: str) -> tuple[int, str] | None:
    """Why a request to ``system`` is refused (status and detail), or None to let it in."""
    credential = f"{system}_api"
    key = world.api_keys.get(credential)
    if key is None:
        return None
    scope = f"{system}:{'read' if method.upper() in READ_METHODS else 'write'}"
    kind, _, token = authorization.partition(" ")
    token = token.strip()
    if kind.lower() != "bearer" or not token:
        return 401, (
            f"the {system} API takes a short-lived token of {credential} (Authorization: "
            "Bearer ...) from the credential vault; the executor's client adds it"
        )
    claims = read_claims(token)
    if claims is not None and claims.credential != credential:
        return 403, f"a token of {claims.credential} does not open the {system} API"
    now = world.now_datetime()
    if verify_token(key, token, credential=credential, now=now, scope=scope):
        return None
    signed = claims is not None and verify_token(
        key, token, credential=credential, now=claims.expires_at - timedelta(seconds=1)
    )
    if claims is None or not signed:
        return 401, f"the token of {credential} is not one the vault signed"
    if now >= claims.expires_at:
        return 401, (
            f"the token of {credential} expired at {claims.expires_at.isoformat()}; tokens "
            "live about 15 minutes and the vault renews them before that"
        )
    held = ", ".join(claims.scopes) or "none"
    return 403, f"the token of {credential} does not carry {scope} (it has: {held})"


class ApiTokenGate:
    """ASGI middleware: refuse requests to a keyed system's JSON API without a good token."""

    def __init__(self, app: ASGIApp, world: World) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer it with the refusal."""
        if scope["type"] == "http" and self.world.api_keys:
            system = scope["path"].strip("/").split("/", 1)[0]
            if system in SYSTEMS:
                headers = dict(scope.get("headers") or ())
                authorization = headers.get(b"authorization", b"").decode("latin-1")
                refused = refusal(self.world, system, scope["method"], authorization)
                if refused is not None:
                    status, detail = refused
                    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
