"""IM auth data: parsing the Authorization header (and auth files), and who the caller is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

_NEWLINE_IN_VALUE = "\x00"  # stands for a "\\n" (escaped newline) while lines are split


class AuthError(Exception):
    """The request carries no usable identity."""


@dataclass(frozen=True)
class Identity:
    """Who is calling: the InfrastructureManager credentials, reduced to a stable key."""

    name: str
    key: str  # sha256 of user and password: ownership is matched on both, as in IM


def split_pairs(line: str) -> dict[str, str]:
    """`k = v; k2 = 'v;2'` → {k: v, k2: 'v;2'}; quotes protect ; and =."""
    pairs: dict[str, str] = {}
    field, quote, fields = [], "", []
    for ch in line:
        if quote:
            if ch == quote:
                quote = ""
            else:
                field.append(ch)
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            fields.append("".join(field))
            field = []
        else:
            field.append(ch)
    fields.append("".join(field))
    for item in fields:
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            break  # IM stops reading a line at a pair that is not key=value
        pairs[key.strip()] = value.strip().replace(_NEWLINE_IN_VALUE, "\n")
    return pairs


def parse_auth_data(text: str) -> list[dict[str, str]]:
    """Every auth line of an IM Authorization header or auth file, as dicts."""
    text = text.strip()
    if text.startswith("[") and "\\n" not in text:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, list) and all(isinstance(x, dict) for x in data):
            return [{str(k): str(v) for k, v in item.items()} for item in data]
    # In a header, lines are joined by a literal backslash-n, and a newline inside a value is an
    # escaped backslash-backslash-n; an auth file has real newlines.
    text = text.replace("\\\\n", _NEWLINE_IN_VALUE)
    lines: list[dict[str, str]] = []
    for raw in text.replace("\\n", "\n").splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        pairs = split_pairs(raw)
        if pairs:
            lines.append(pairs)
    return lines


def identify(header: str | None) -> tuple[Identity, list[dict[str, str]]]:
    """The caller's identity and all their auth lines, or AuthError."""
    if not header:
        raise AuthError("No authentication data provided")
    if header.lower().startswith("bearer "):
        raise AuthError(
            "OIDC bearer tokens are not accepted by this server yet; "
            "send an InfrastructureManager line with username and password"
        )
    lines = parse_auth_data(header)
    for line in lines:
        if line.get("type") == "InfrastructureManager":
            user, password = line.get("username"), line.get("password")
            if line.get("token") and not user:
                raise AuthError(
                    "OIDC tokens are not accepted by this server yet; use username and password"
                )
            if not user or password is None:
                raise AuthError("The InfrastructureManager line needs username and password")
            if user.startswith("__OPENID__"):
                raise AuthError("Invalid username: the __OPENID__ prefix is reserved")
            digest = hashlib.sha256(f"{user}\x00{password}".encode()).hexdigest()
            return Identity(name=user, key=digest), lines
    raise AuthError("No credentials provided for the InfrastructureManager")


def to_header(lines: list[dict[str, str]]) -> str:
    """Auth lines as one Authorization header value (the inverse of parse_auth_data)."""

    def quote(value: str) -> str:
        value = value.replace("\n", "\\\\n")
        return f"'{value}'" if any(c in value for c in ";='\"") else value

    return "\\n".join("; ".join(f"{k} = {quote(v)}" for k, v in line.items()) for line in lines)
