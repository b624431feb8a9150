"""Open event streams (server-sent events) per user, bounded: each one holds a connection and
polls the store every second, so one user opening hundreds would slow everyone. Past
ORBIS_MAX_STREAMS_PER_USER (read at each open) the next is refused with 429 naming the setting.

Counted per server process: servers sharing a database each allow that many.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from orbis import config
from orbis.service import TooManyRequests


class StreamSlots:
    """How many event streams each user (owner key) has open on this server."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def count(self, key: str) -> int:
        return self._open.get(key, 0)

    def open(self, key: str, events: AsyncIterator[str]) -> AsyncIterator[str]:
        """`events`, holding one of the user's slots until it ends, fails or is dropped
        (TooManyRequests when none is free)."""
        limit = config.limits().max_streams_per_user
        if self.count(key) >= limit:
            raise TooManyRequests(
                f"limit: at most {limit} open event streams per user "
                "(ORBIS_MAX_STREAMS_PER_USER); close another page or stream first"
            )
        self._open[key] = self.count(key) + 1
        return _Held(self, key, events)

    def _release(self, key: str) -> None:
        left = self.count(key) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)


class _Held:
    """An event stream that gives its slot back exactly once: when it ends, raises (a client
    gone: cancelled), is closed, or is dropped unstarted (a response never sent)."""

    def __init__(self, slots: StreamSlots, key: str, events: AsyncIterator[str]) -> None:
        self._slots, self._key, self._events = slots, key, events
        self._held = True

    def __aiter__(self) -> _Held:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._events.__anext__()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._release(self._key)

    async def aclose(self) -> None:
        self.release()
        closer = getattr(self._events, "aclose", None)
        if closer is not None:
            await closer()

    def __del__(self) -> None:
        self.release()


class HeldStreamingResponse(StreamingResponse):
    """A streaming response that gives its slot back when it ends, however it ends: a client
    gone while a chunk was being sent cancels the send, outside the iterator, and `async for`
    never closes what it iterates, so without this the slot waited for garbage collection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if isinstance(self.body_iterator, _Held):
                self.body_iterator.release()  # synchronous: runs even when cancelled
