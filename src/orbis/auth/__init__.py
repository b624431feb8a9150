"""IM auth data: parsing the Authorization header (and auth files), and who the caller is."""

from __future__ import annotations

from orbis.auth.data import parse_auth_data, split_pairs, to_header
from orbis.auth.identity import (
    OPENID_PREFIX,
    AuthConfigError,
    Authenticator,
    AuthError,
    Identity,
    identity_key,
)

_DEFAULT = Authenticator()


def identify(header: str | None) -> tuple[Identity, list[dict[str, str]]]:
    """The caller's identity and all their auth lines (no OIDC issuer trusted), or AuthError."""
    who = _DEFAULT.identify(header)
    return who, parse_auth_data(header or "")


__all__ = [
    "OPENID_PREFIX",
    "AuthConfigError",
    "AuthError",
    "Authenticator",
    "Identity",
    "identify",
    "identity_key",
    "parse_auth_data",
    "split_pairs",
    "to_header",
]
