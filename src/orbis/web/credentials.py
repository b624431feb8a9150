"""Per-user cloud credentials the dashboard deploys with."""

from __future__ import annotations

from typing import Any

from fastapi import Request


def listing(request: Request) -> list[dict[str, Any]]:
    """The user's stored credentials, masked (id, type, a hint of each secret)."""
    return []


def lines(request: Request, credential_id: str) -> list[dict[str, str]]:
    """The IM auth line of one stored credential ([] for none: the local back-end)."""
    return []
