"""Helpers shared by the endpoints: SSE framing, and stopping work when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

from fastapi import Request

from app.errors import failure_error
from app.turn import Failed, TurnEvent

T = TypeVar("T")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClientGone(Exception):
    """The HTTP client disconnected before the answer was ready."""


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and raising ClientGone) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise ClientGone()
    return task.result()


async def first_event(request: Request, events: AsyncGenerator[TurnEvent, None]) -> TurnEvent:
    """The turn's first event; a failure before anything was produced becomes an HTTP error status."""
    try:
        event = await until_disconnect(request, anext(events))
    except ClientGone:
        await events.aclose()
        raise
    if isinstance(event, Failed):
        await events.aclose()
        raise failure_error(event.kind, event.message, event.retry_at)
    return event
