"""Security: the credential vault (short-lived tokens instead of long-lived keys)."""

from agentlab.security.vault import DEFAULT_TTL_S, CredentialVault, ShortLivedToken

__all__ = ["DEFAULT_TTL_S", "CredentialVault", "ShortLivedToken"]
