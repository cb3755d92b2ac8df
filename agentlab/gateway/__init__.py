"""The HTTP gateway: runs for actors, their events, approvals, the audit log, /metrics.

``build_gateway_app`` assembles the FastAPI app; ``agentlab serve`` serves it. Bearer tokens
(``agentlab tokens issue``) carry an actor and scopes. See docs/gateway.md.
"""

from agentlab.gateway.app import build_gateway_app
from agentlab.gateway.auth import (
    APPROVALS_DECIDE,
    AUDIT_READ,
    GATEWAY_SCOPES,
    RUNS_READ,
    RUNS_READ_ALL,
    RUNS_SUBMIT,
    RUNS_SUBMIT_AS,
    Caller,
    IssuedToken,
    TokenBook,
    TokenRecord,
    hash_token,
    issue_token,
    revoke_token,
)
from agentlab.gateway.service import Gateway, GatewayError

__all__ = [
    "APPROVALS_DECIDE",
    "AUDIT_READ",
    "GATEWAY_SCOPES",
    "RUNS_READ",
    "RUNS_READ_ALL",
    "RUNS_SUBMIT",
    "RUNS_SUBMIT_AS",
    "Caller",
    "Gateway",
    "GatewayError",
    "IssuedToken",
    "TokenBook",
    "TokenRecord",
    "build_gateway_app",
    "hash_token",
    "issue_token",
    "revoke_token",
]
