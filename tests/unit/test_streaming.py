"""app/api/streaming.py: SSE framing, a client's disconnect, and a turn's first event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from fastapi import Request
from starlette.types import Message

from app.api.streaming import ClientGone, first_event, sse, until_disconnect
from app.errors import ApiError
from app.turn import Completed, Failed, FailureKind, TextDelta, TurnEvent


def request(disconnect: asyncio.Event) -> Request:
    """A request whose client disconnects when `disconnect` is set."""

    async def receive() -> Message:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


class Events:
    """A turn's events whose closing is seen."""

    def __init__(self, *events: TurnEvent, hang: bool = False) -> None:
        self.events, self.hang, self.closed = events, hang, False

    async def run(self) -> AsyncGenerator[TurnEvent, None]:
        try:
            for event in self.events:
                yield event
            if self.hang:
                await asyncio.Event().wait()
        finally:
            self.closed = True


def test_sse_frames_compact_json_and_keeps_unicode() -> None:
    assert sse({"a": "é", "b": [1, 2]}) == 'data: {"a":"é","b":[1,2]}\n\n'.encode()


async def test_until_disconnect_returns_the_work() -> None:
    async def work() -> int:
        return 7

    assert await until_disconnect(request(asyncio.Event()), work()) == 7


async def test_a_disconnect_cancels_the_work_and_raises_client_gone() -> None:
    gone, started, cancelled = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def leave() -> None:
        await started.wait()
        gone.set()

    leaving = asyncio.create_task(leave())
    with pytest.raises(ClientGone):
        await until_disconnect(request(gone), work())
    await leaving
    assert cancelled.is_set()


async def test_first_event_returns_it_and_leaves_the_turn_open() -> None:
    events = Events(TextDelta("a"), Completed("a"))
    stream = events.run()
    assert await first_event(request(asyncio.Event()), stream) == TextDelta("a")
    assert not events.closed
    await stream.aclose()


async def test_a_failure_first_is_its_api_error_and_closes_the_turn() -> None:
    events = Events(Failed(FailureKind.RATE_LIMITED, "quota"))
    with pytest.raises(ApiError) as caught:
        await first_event(request(asyncio.Event()), events.run())
    assert caught.value.status == 429 and caught.value.code == "upstream_rate_limited"
    assert events.closed


async def test_a_client_gone_before_the_first_event_closes_the_turn() -> None:
    events = Events(hang=True)
    gone = asyncio.Event()
    gone.set()
    with pytest.raises(ClientGone):
        await first_event(request(gone), events.run())
    assert events.closed
