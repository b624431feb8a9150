"""Owner marks: what providers label or tag each resource with, so that a resource can later be
recognised as made for one owner without naming them.

A mark is a keyed hash (HMAC-SHA256 with a key derived from the server secret) of the owner
key, never the user name or password: a label is readable by anyone who can list the
containers or VMs, and must not let them guess who owns it or forge another owner's mark.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

MARK_PURPOSE = "owner-mark"


class OwnerMarks:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def ephemeral(cls) -> OwnerMarks:
        """Marks valid for this process only (a service built without configure_access, as in
        tests): nothing made earlier is recognised, which only ever refuses more."""
        return cls(os.urandom(32))

    def mark(self, owner_key: str) -> str:
        digest = hmac.new(self._key, owner_key.encode(), hashlib.sha256).hexdigest()
        return digest[:40]  # 160 bits: fits every cloud's tag value limit

    def matches(self, found: str | None, owner_keys: Iterable[str]) -> bool:
        """Does `found` (a resource's mark) belong to one of these owner keys?"""
        if not found:
            return False
        return any(hmac.compare_digest(found, self.mark(key)) for key in owner_keys)
