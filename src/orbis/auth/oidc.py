"""OIDC access tokens (JWTs) checked against trusted issuers' published keys (JWKS).

Keys are fetched from `<iss>/.well-known/openid-configuration` → `jwks_uri` and cached; an
unknown key id triggers one refetch (key rotation), at most every MIN_REFETCH seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
KEYS_TTL = 600.0
MIN_REFETCH = 10.0


class TokenError(Exception):
    """The token is not acceptable; the message never contains the token."""


def _norm(issuer: str) -> str:
    return issuer.rstrip("/")


@dataclass
class _Keys:
    keys: dict[str, Any] = field(default_factory=dict)  # kid → key object
    fetched: float = 0.0


class OidcVerifier:
    def __init__(
        self, issuers: list[str], audience: str | None = None, timeout: float = 5.0
    ) -> None:
        self.issuers = {_norm(i): i for i in issuers if i.strip()}
        self.audience = audience
        self.timeout = timeout
        self._keys: dict[str, _Keys] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, once signature, expiry, issuer and audience are checked."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("Invalid token: not a JWT") from None
        issuer = str(unverified.get("iss", ""))
        if _norm(issuer) not in self.issuers:
            raise TokenError(f"Invalid token: issuer '{issuer}' is not trusted")
        key = self._key(issuer, header.get("kid"))
        options = {"require": ["exp", "iss", "sub"], "verify_aud": self.audience is not None}
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                issuer=issuer,
                audience=self.audience,
                options=options,  # type: ignore[arg-type]
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("Invalid token: expired") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"Invalid token: {exc}") from None
        return claims

    def _key(self, issuer: str, kid: str | None) -> Any:
        norm = _norm(issuer)
        with self._lock:
            cached = self._keys.setdefault(norm, _Keys())
            age = time.monotonic() - cached.fetched
            missing = kid not in cached.keys if kid else not cached.keys
            if age > KEYS_TTL or (missing and age > MIN_REFETCH):
                cached.keys = self._fetch(issuer)
                cached.fetched = time.monotonic()
            if kid is None and len(cached.keys) == 1:
                return next(iter(cached.keys.values()))
            if kid not in cached.keys:
                raise TokenError("Invalid token: signing key not published by its issuer")
            return cached.keys[kid]

    def _fetch(self, issuer: str) -> dict[str, Any]:
        try:
            discovery = httpx.get(
                f"{_norm(issuer)}/.well-known/openid-configuration", timeout=self.timeout
            )
            discovery.raise_for_status()
            jwks = httpx.get(discovery.json()["jwks_uri"], timeout=self.timeout)
            jwks.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(jwks.json())
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
            raise TokenError(f"Cannot get the keys of issuer {issuer}: {exc}") from None
        return {k.key_id or "": k.key for k in keyset.keys}
