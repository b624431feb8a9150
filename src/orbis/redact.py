"""Secrets kept out of logs, contmsg, events and error answers.

Two nets: the values of secrets this process has seen (cloud passwords and tokens of auth lines,
ORBIS_SECRET_KEY), replaced wherever they appear, e.g. echoed back in a cloud's error text; and
shapes that are secret whatever their value (`password = …` in an auth line, bearer tokens,
JWTs, PEM private keys). `redact` is applied where messages are made (api/negotiation.py,
engine/deployer_base.py) and by a logging filter on the server's log handlers (`install`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

MASK = "[redacted]"
MIN_LENGTH = 6  # shorter values are too common to replace everywhere (and weak anyway)
MAX_KNOWN = 10_000
# auth-line fields that are secret (IM's names, and the OpenStack/EC2/Kubernetes ones)
SECRET_FIELDS = ("password", "token", "secret", "private_key", "proxy", "client_secret",
                 "refresh_token", "access_token", "aws_secret_access_key")  # fmt: skip

_FIELDS = "|".join(SECRET_FIELDS)
_SHAPES = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # a JWT
    # `password = x` (an auth line), `"password": "x"` (JSON)
    re.compile(rf"(?i)\b({_FIELDS})(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s;,\"']+)"),
    re.compile(rf"(?i)(\"(?:{_FIELDS})\")(\s*:\s*)(\"[^\"]*\")"),
]

_known: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


def remember(values: Iterable[str | None]) -> None:
    """Values to replace from now on (most recent kept when there are too many)."""
    with _lock:
        for value in values:
            if value and len(value) >= MIN_LENGTH:
                _known[value] = None
                _known.move_to_end(value)
        while len(_known) > MAX_KNOWN:
            _known.popitem(last=False)


def remember_lines(lines: Iterable[Mapping[str, str]]) -> None:
    """The secret fields of auth lines."""
    remember(v for line in lines for k, v in line.items() if k.lower() in SECRET_FIELDS)


def _shape(match: re.Match[str]) -> str:
    if match.lastindex == 3:  # field = value: keep the field's name
        quote = '"' if match.group(3).startswith('"') else ""
        return f"{match.group(1)}{match.group(2)}{quote}{MASK}{quote}"
    if match.lastindex == 1 and match.group(1).lower() == "bearer":
        return f"{match.group(1)} {MASK}"
    return MASK


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # longest first: no partial leftovers
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for shape in _SHAPES:
        text = shape.sub(_shape, text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format: leave it to logging's own error report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install(loggers: Iterable[str] = ("", "uvicorn", "uvicorn.error", "uvicorn.access")) -> None:
    """Put the filter on every handler of these loggers (the root one's get every record that
    propagates). Safe to call more than once."""
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
