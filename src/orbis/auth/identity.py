"""Who the caller is: IM's InfrastructureManager lines (user and password, or an OIDC token)."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orbis import redact
from orbis.auth.data import parse_auth_data
from orbis.auth.oidc import OidcVerifier, TokenError

OPENID_PREFIX = "__OPENID__"
IM_TYPE = "InfrastructureManager"
CACHE_SIZE = 2048


class AuthError(Exception):
    """The request carries no usable identity."""


class AuthConfigError(ValueError):
    """The server's authentication settings are unusable (said at start)."""


def identity_key(user: str, password: str, secret: bytes) -> str:
    """Ownership is matched on user and password together, as in IM. Only an HMAC-SHA256 keyed
    with the server secret is kept: fast enough for every request, and a stolen database alone
    does not allow guessing passwords offline."""
    return hmac.new(secret, f"{user}\x00{password}".encode(), hashlib.sha256).hexdigest()


def legacy_identity_key(user: str, password: str) -> str:
    """The unsalted form stored before migration 0303; only matched to replace it."""
    return hashlib.sha256(f"{user}\x00{password}".encode()).hexdigest()


# {legacy key: new key} of the identities of a request, for the store to upgrade
LegacyUpgrade = Callable[[Mapping[str, str]], None]


@dataclass(frozen=True)
class Identity:
    """The caller: its first IM identity (name, key), every IM identity it presented (keys),
    whether it is an administrator, and its cloud credential lines (never printed)."""

    name: str
    key: str
    keys: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    admin: bool = False
    clouds: tuple[dict[str, str], ...] = field(default=(), repr=False, compare=False)

    def owners(self) -> list[tuple[str, str]]:
        """(key, name) of each IM identity, for recording as owners."""
        keys = self.keys or (self.key,)
        names = self.names or (self.name,)
        return list(zip(keys, names, strict=False))

    def may_act_on(self, owner_keys: Iterable[str]) -> bool:
        mine = set(self.keys or (self.key,))
        return self.admin or not mine.isdisjoint(owner_keys)


class Authenticator:
    """Turns an Authorization header into an Identity. Results are cached by header text
    (tokens until they expire), since a client sends the same header on every call."""

    def __init__(
        self,
        issuers: Iterable[str] = (),
        audience: str | None = None,
        admins: Iterable[str] = (),
        *,
        secret: bytes | None = None,
        on_legacy: LegacyUpgrade | None = None,
    ) -> None:
        issuers = [i for i in issuers if i.strip()]
        self.oidc = OidcVerifier(issuers, audience) if issuers else None
        # the server gives a key derived from ORBIS_SECRET_KEY; a random one lasts one process
        self.secret = secret or os.urandom(32)
        self.on_legacy = on_legacy
        self.admin_keys = {self._admin_key(e, issuers) for e in admins if e.strip()}
        self._cache: OrderedDict[str, tuple[float, Identity]] = OrderedDict()

    def identify(self, header: str | None, now: float | None = None) -> Identity:
        if not header or not header.strip():
            raise AuthError("No authentication data provided")
        now = time.time() if now is None else now
        hit = self._cache.get(header)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(header)
            return hit[1]
        who, expires = self._identify(header.strip())
        self._cache[header] = (min(expires, now + 3600), who)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return who

    def _identify(self, header: str) -> tuple[Identity, float]:
        if header.lower().startswith("bearer "):
            lines = [{"type": IM_TYPE, "token": header[7:].strip()}]
        else:
            lines = parse_auth_data(header)
        im_lines = [line for line in lines if line.get("type") == IM_TYPE]
        if not im_lines:
            raise AuthError("No credentials provided for the InfrastructureManager")
        keys, names, legacy = [], [], {}
        expires = float("inf")
        for line in im_lines:
            key, name, exp = self.line_identity(line)
            keys.append(key)
            names.append(name)
            expires = min(expires, exp)
            if not line.get("token"):
                legacy[legacy_identity_key(name, line.get("password", ""))] = key
        if legacy and self.on_legacy is not None:
            self.on_legacy(legacy)
        clouds = tuple(line for line in lines if line.get("type") != IM_TYPE)
        redact.remember_lines(lines)  # their secrets are masked wherever they show up
        # a token's key binds issuer and subject: an admin's `sub` from another issuer differs
        admin = any(k in self.admin_keys for k in keys)
        who = Identity(names[0], keys[0], tuple(keys), tuple(names), admin, clouds)
        return who, expires

    def line_identity(self, line: dict[str, str]) -> tuple[str, str, float]:
        """(key, name, expiry) of one InfrastructureManager line; AuthError if unusable."""
        token = line.get("token")
        if token:
            claims = self.verify_token(token)
            issuer = str(claims["iss"])
            issuer = issuer if issuer.endswith("/") else issuer + "/"
            name = OPENID_PREFIX + str(claims["sub"])
            return self.token_key(issuer, str(claims["sub"])), name, float(claims["exp"])
        user, password = line.get("username"), line.get("password")
        if not user or password is None:
            raise AuthError("The InfrastructureManager line needs username and password, or token")
        if user.startswith(OPENID_PREFIX):
            raise AuthError(f"Invalid username: the {OPENID_PREFIX} prefix is reserved")
        return identity_key(user, password, self.secret), user, float("inf")

    def token_key(self, issuer: str, subject: str) -> str:
        issuer = issuer if issuer.endswith("/") else issuer + "/"
        return identity_key(OPENID_PREFIX + subject, issuer + subject, self.secret)

    def verify_token(self, token: str) -> dict[str, Any]:
        if self.oidc is None:
            raise AuthError("OIDC tokens are not accepted: no trusted issuer is configured")
        try:
            return self.oidc.verify(token)
        except TokenError as exc:
            raise AuthError(str(exc)) from None

    def _admin_key(self, entry: str, issuers: list[str]) -> str:
        """`user:password` for a local administrator; `__OPENID__<sub>@<issuer URL>` for a
        token one (`__OPENID__<sub>` alone only when one issuer is trusted: it is implied)."""
        entry = entry.strip()
        if not entry.startswith(OPENID_PREFIX):
            user, _, password = entry.partition(":")
            return identity_key(user, password, self.secret)
        subject = entry[len(OPENID_PREFIX) :]
        at = max(subject.rfind("@https://"), subject.rfind("@http://"))
        if at >= 0:
            return self.token_key(subject[at + 1 :], subject[:at])
        if len(issuers) != 1:
            raise AuthConfigError(
                f"ORBIS_ADMIN_USERS: {OPENID_PREFIX}{subject} names no issuer; with "
                f"{len(issuers)} trusted issuers (ORBIS_OIDC_ISSUERS) write "
                f"{OPENID_PREFIX}<sub>@<issuer URL>"
            )
        return self.token_key(issuers[0], subject)
