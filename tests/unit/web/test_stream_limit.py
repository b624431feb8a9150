"""Open event streams per user are bounded (ORBIS_MAX_STREAMS_PER_USER): past the limit the
next one is refused with 429 naming the setting, on the dashboard and on the API alike, and a
stream gives its slot back when it ends, fails, is closed or is never started."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from orbis.api.stream_slots import StreamSlots
from orbis.service import TooManyRequests

from .conftest import ALICE, EMPTY, login


async def events(n: int) -> AsyncIterator[str]:
    for i in range(n):
        yield f"e{i}"


async def failing() -> AsyncIterator[str]:
    yield "first"
    raise RuntimeError("the store went away")


def test_slots_are_counted_per_user_and_given_back(monkeypatch):
    monkeypatch.setenv("ORBIS_MAX_STREAMS_PER_USER", "2")
    slots = StreamSlots()

    async def scenario() -> None:
        ended = slots.open("alice", events(2))
        broken = slots.open("alice", failing())
        with pytest.raises(TooManyRequests, match=r"at most 2 .*ORBIS_MAX_STREAMS_PER_USER"):
            slots.open("alice", events(1))
        slots.open("bob", events(1))  # another user's own slots
        assert [e async for e in ended] == ["e0", "e1"]  # ended: given back
        assert slots.count("alice") == 1
        with pytest.raises(RuntimeError):
            async for _ in broken:
                pass
        assert slots.count("alice") == 0
        closed = slots.open("alice", events(5))
        assert await closed.__anext__() == "e0"
        await closed.aclose()  # a client gone
        assert slots.count("alice") == 0

    asyncio.run(scenario())
    unstarted = slots.open("carol", events(1))
    assert slots.count("carol") == 1
    del unstarted  # a response never sent
    assert slots.count("carol") == 0


def test_past_the_limit_the_dashboard_and_the_api_answer_429(client, monkeypatch):
    monkeypatch.setenv("ORBIS_MAX_STREAMS_PER_USER", "1")
    made = client.post("/infrastructures", content=EMPTY,
                       headers={"Content-Type": "text/yaml", "Authorization": ALICE})
    infra_id = made.text.rsplit("/", 1)[-1]
    login(client)
    with client.stream("GET", f"/ui/infrastructures/{infra_id}/stream") as first:
        assert next(first.iter_lines()) == "event: detail"
        page = client.get(f"/ui/infrastructures/{infra_id}/stream")
        assert page.status_code == 429
        assert "at most 1 open event streams per user (ORBIS_MAX_STREAMS_PER_USER)" in page.text
        api = client.get(f"/orbis/infrastructures/{infra_id}/stream?follow=1",
                         headers={"Authorization": ALICE})  # the same identity
        assert api.status_code == 429 and "ORBIS_MAX_STREAMS_PER_USER" in api.text
    # the page closed: its slot is free again
    with client.stream("GET", f"/ui/infrastructures/{infra_id}/stream") as again:
        assert again.status_code == 200
