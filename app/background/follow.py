"""A background response's stream: its stored events after `starting_after`, then the live ones, to the terminal
event. On the instance running it the events come from memory; elsewhere the store is polled."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from app.background.runs import ACTIVE, LEASE_SECONDS, TERMINAL_EVENTS, BackgroundRuns
from app.store import StoreUnavailable

POLL_SECONDS = 0.25  # how often a follower on another instance reads new events from the store
SETTLE_SECONDS = 5.0  # how long a follower waits without news before checking that the runner is alive


def frame(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def follow(runs: BackgroundRuns, owner: str, response_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
    """Every event numbered above `after`, once and in order, ending with the terminal event (or at once, for an
    ended response with nothing after `after`)."""
    last = after
    checked = float("-inf")  # when the store's status was last looked at
    while True:
        run = runs.mine(owner, response_id)
        if run is not None:
            batch = run.events[last + 1 :]
        else:
            try:
                batch = await runs.store.run_events(owner, response_id, last)
            except StoreUnavailable:
                batch = []
        for event in batch:
            yield event
            last = event["sequence_number"]
            if event["type"] in TERMINAL_EVENTS:
                return
        if batch:
            continue
        if run is not None:
            await run.wait_beyond(last + 1)
            continue
        if time.monotonic() - checked > min(SETTLE_SECONDS, LEASE_SECONDS):
            checked = time.monotonic()
            if await _ended(runs, owner, response_id):
                for event in await runs.store.run_events(owner, response_id, last):  # written before the status
                    yield event
                return
        await asyncio.sleep(POLL_SECONDS)


async def _ended(runs: BackgroundRuns, owner: str, response_id: str) -> bool:
    """Whether the response has ended or is gone; a dead runner's response is failed (its terminal event added)."""
    try:
        stored = await runs.store.get(owner, response_id)
        if stored is None or stored.response.get("status") not in ACTIVE:
            return True
        await runs.settle(owner, response_id)
    except StoreUnavailable:
        pass
    return False


async def sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield frame(event)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
