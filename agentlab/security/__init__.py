"""Security: the credential vault, injection screens, spotlighting, DLP, output inspection."""

from agentlab.security.dlp import Dlp, DlpResult
from agentlab.security.metrics import SecurityCounts, security_counts
from agentlab.security.vault import (
    API_SYSTEMS,
    DEFAULT_TTL_S,
    CredentialVault,
    ShortLivedToken,
    TokenBroker,
    VaultAuth,
    api_credential,
    open_api_vault,
    route_by_system,
)

__all__ = [
    "API_SYSTEMS",
    "DEFAULT_TTL_S",
    "CredentialVault",
    "Dlp",
    "DlpResult",
    "SecurityCounts",
    "ShortLivedToken",
    "TokenBroker",
    "VaultAuth",
    "api_credential",
    "open_api_vault",
    "route_by_system",
    "security_counts",
]
