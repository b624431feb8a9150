"""Regular expressions a user writes (`?filter=`, TOSCA `pattern` constraints), compiled with
RE2: matching takes time linear in the text, so `(a+)+$` against a long string answers at once
instead of backtracking for hours. RE2 has no backreferences or lookaround; such a pattern is
refused with a message that says so.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

import re2

from orbis.config import limits

_MAX_MEM = 8 << 20  # RE2's compiled-program budget: a{1000}{1000} is refused, not built


class UserRegex(Protocol):
    def search(self, text: str) -> Any: ...

    def fullmatch(self, text: str) -> Any: ...


class RegexError(Exception):
    """A pattern refused: too long, or not compilable by RE2 (the message says which)."""


def compile_user_regex(pattern: str) -> UserRegex:
    """The pattern compiled by RE2 (cached), or RegexError naming the problem."""
    limit = limits().max_regex_length
    if len(pattern) > limit:
        raise RegexError(f"the regular expression is longer than {limit} characters "
                         "(ORBIS_MAX_REGEX_LENGTH)")  # fmt: skip
    return _compile(pattern)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> UserRegex:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.max_mem = _MAX_MEM
    try:
        compiled: UserRegex = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise RegexError(f"the regular expression {pattern!r} is not supported by the "
                         f"linear-time engine (RE2): {reason}") from None  # fmt: skip
    return compiled
