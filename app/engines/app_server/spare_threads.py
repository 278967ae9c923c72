"""Threads started ahead of requests on the app-server workers, so a request skips thread/start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from app.engines.app_server.rpc import RpcError, RpcSession, SessionClosed

log = logging.getLogger("codex_wrapper")


# A refill waits for its worker to have no turn running, at most this long: an agent thread/start costs ~0.1 s of
# CPU, which, started beside running turns, slowed them and the next request (measured in docs/BENCHMARKS.md).
REFILL_CAP = 0.5


class SpareThreads:
    """Threads started ahead of requests, `depth` per (worker session, thread parameters), so a request skips
    thread/start; two deep, so back-to-back requests still find one while its successor starts. The most
    recent `max_shapes` parameter sets are kept; older spares are released."""

    def __init__(self, depth: int = 2, max_shapes: int = 16, refill_cap: float = REFILL_CAP) -> None:
        self.depth = depth
        self.max_shapes = max_shapes
        self.refill_cap = refill_cap
        self._deferred: dict[tuple[int, str], tuple[RpcSession, dict[str, Any], asyncio.TimerHandle]] = {}
        self._spares: dict[tuple[int, str], list[str]] = {}
        self._sessions: dict[tuple[int, str], RpcSession] = {}
        self._starting: dict[tuple[int, str], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(session: RpcSession, params: dict[str, Any]) -> tuple[int, str]:
        return id(session), json.dumps(params, sort_keys=True)

    def take(self, session: RpcSession, params: dict[str, Any]) -> str | None:
        """A ready thread for these parameters, or None; `fill` starts successors once the turn is over."""
        key = self.key(session, params)
        if self._sessions.get(key) not in (None, session):  # a dead worker's spares under a recycled id
            self._spares.pop(key, None)
            self._sessions.pop(key, None)
        spares = self._spares.get(key)
        if not spares or session.closed.is_set():
            self.misses += 1
            return None
        self._spares[key] = self._spares.pop(key)  # most recently used last: evicted last
        self.hits += 1
        return spares.pop()

    def fill(self, session: RpcSession, params: dict[str, Any]) -> None:
        """Start threads until `depth` are ready or starting for these parameters."""
        key = self.key(session, params)
        if session.closed.is_set():
            return
        missing = self.depth - len(self._spares.get(key, ())) - self._starting.get(key, 0)
        for _ in range(missing):
            self._starting[key] = self._starting.get(key, 0) + 1
            task = asyncio.create_task(self._start(session, params, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def refill(self, session: RpcSession, params: dict[str, Any], busy: bool) -> None:
        """After a turn: `fill` at once when no turn runs on the worker (`busy` false), else once none does
        (`idle`) or `refill_cap` seconds have passed, whichever comes first."""
        if not busy:
            self.fill(session, params)
            return
        key = self.key(session, params)
        if key not in self._deferred:
            handle = asyncio.get_running_loop().call_later(self.refill_cap, self._refill, key)
            self._deferred[key] = (session, params, handle)

    def idle(self, session: RpcSession) -> None:
        """No turn runs on this worker now: start its deferred refills."""
        for key in [key for key, entry in self._deferred.items() if entry[0] is session]:
            self._refill(key)

    def _refill(self, key: tuple[int, str]) -> None:
        entry = self._deferred.pop(key, None)
        if entry is not None:
            entry[2].cancel()
            self.fill(entry[0], entry[1])

    def _cancel_deferred(self) -> None:
        for _, _, handle in self._deferred.values():
            handle.cancel()
        self._deferred.clear()

    async def _start(self, session: RpcSession, params: dict[str, Any], key: tuple[int, str]) -> None:
        try:
            thread = await session.request("thread/start", params)
        except (SessionClosed, RpcError) as exc:
            log.debug("spare thread not started: %s", exc)
            return
        finally:
            self._starting[key] -= 1
        self._sessions[key] = session
        self._spares.setdefault(key, []).append(str(thread["thread"]["id"]))
        await self._forget_oldest()

    async def _forget_oldest(self) -> None:
        while len(self._spares) > self.max_shapes:
            oldest = next(iter(self._spares))
            session = self._sessions.pop(oldest)
            for thread_id in self._spares.pop(oldest):
                with contextlib.suppress(SessionClosed, RpcError):
                    await session.request("thread/unsubscribe", {"threadId": thread_id})

    def forget(self) -> None:
        """Drop every spare (their workers were replaced)."""
        self._cancel_deferred()
        self._spares.clear()
        self._sessions.clear()
        self._starting.clear()

    async def stop(self) -> None:
        self._cancel_deferred()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
