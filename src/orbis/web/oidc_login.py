"""Sign-in through an OIDC issuer (authorization-code flow with PKCE)."""

from __future__ import annotations

from fastapi import Request


def issuers_of(request: Request) -> list[str]:
    """The issuers users may sign in with (trusted ones, when a client id is configured)."""
    return []
