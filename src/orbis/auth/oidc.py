"""OIDC access tokens (JWTs) checked against trusted issuers' published keys (JWKS).

Keys are fetched from `<iss>/.well-known/openid-configuration` → `jwks_uri` and cached per
issuer; an unknown key id triggers one refetch (key rotation), at most every MIN_REFETCH seconds.
Fetches are blocking HTTP with a timeout: callers run `verify` in a worker thread (api/deps.py),
and a slow issuer holds up only requests that need its keys.
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
    """One issuer's keys. `keys` is replaced whole, never changed in place, so readers need
    no lock; `refreshing` is held by the one thread fetching them."""

    keys: dict[str, Any] = field(default_factory=dict)  # kid → key object
    fetched: float = float("-inf")
    refreshing: threading.Lock = field(default_factory=threading.Lock)

    def find(self, kid: str | None) -> Any:
        keys = self.keys
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)


class OidcVerifier:
    """Verifies tokens of the trusted `issuers`; `aud` must be `audience` when one is set
    (without one, any audience is accepted: the issuers are then trusted to mint tokens only
    for services like this one)."""

    def __init__(
        self, issuers: list[str], audience: str | None = None, timeout: float = 5.0
    ) -> None:
        self.issuers = {_norm(i): i for i in issuers if i.strip()}
        self.audience = audience
        self.timeout = timeout  # per HTTP call; a fetch is two calls (discovery, JWKS)
        # one entry per issuer, made up front: no lock is needed to find an issuer's keys
        self._keys = {norm: _Keys() for norm in self.issuers}

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
        """The issuer's key `kid`. Keys are refreshed single-flight per issuer: one thread
        fetches while the others of that issuer wait for it (or, when they know the key
        already, use it meanwhile); other issuers' tokens never wait for this one."""
        cached = self._keys[_norm(issuer)]
        asked = time.monotonic()
        key = cached.find(kid)
        if key is not None and asked - cached.fetched <= KEYS_TTL:
            return key
        if key is not None and not cached.refreshing.acquire(blocking=False):
            return key  # stale but known: someone is refreshing, do not wait for them
        if key is None and not cached.refreshing.acquire(timeout=2 * self.timeout + 1):
            raise TokenError(f"Invalid token: the keys of issuer {issuer} are not available "
                             "yet (a fetch is slow); try again")  # fmt: skip
        try:
            # unless another thread refreshed while this one waited; a missing key id refetches
            # at most every MIN_REFETCH seconds (forged ids must not make us hammer the issuer)
            waited_out = cached.fetched >= asked
            if not waited_out and (key is not None or asked - cached.fetched > MIN_REFETCH):
                cached.keys = self._fetch(issuer)
                cached.fetched = time.monotonic()
        finally:
            cached.refreshing.release()
        key = cached.find(kid)
        if key is None:
            raise TokenError("Invalid token: signing key not published by its issuer")
        return key

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
