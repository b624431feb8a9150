"""Local stand-ins for clouds we cannot reach from the tests: small HTTP servers on 127.0.0.1
that answer with recorded API exchanges (in the documented shapes of each API) and keep just
enough state (what was created is listed afterwards), so the real SDKs talk real HTTP to them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ALLOW = "ORBIS_FETCH_ALLOW"


@contextmanager
def allowed(address: str) -> Iterator[None]:
    """While a stand-in serves, ORBIS_FETCH_ALLOW lists its `host:port` as well, as an operator
    lists a cloud on a private address: a user's endpoint on loopback is refused otherwise
    (net/endpoints.py). Only that entry is taken out again afterwards."""
    os.environ[ALLOW] = ",".join(x for x in (os.environ.get(ALLOW), address) if x)
    try:
        yield
    finally:
        entries = os.environ.get(ALLOW, "").split(",")
        if address in entries:
            entries.remove(address)
        if any(entries):
            os.environ[ALLOW] = ",".join(entries)
        else:
            os.environ.pop(ALLOW, None)
