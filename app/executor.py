"""Admission and lifetime of turns: a bounded number at once, a bounded queue, a deadline, cancellation."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.codex.plan_limits import PlanLimits
from app.engines.base import Engine
from app.errors import ApiError
from app.turn import TERMINAL, Completed, Failed, FailureKind, Turn, TurnEvent, UsageReport

log = logging.getLogger("codex_wrapper")
_END = object()


class TurnStats(Protocol):
    """What the executor records of a turn on its request's log record (app/middleware/request_log.py's
    RequestStats fits it): the executor knows no HTTP."""

    queue_wait_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    error: str | None


@dataclass(frozen=True)
class BackgroundAdmission:
    """A background turn: it waits for its slot without a queue deadline (app/background bounds how many wait),
    `admitted` is called once it has one, and `timeout` is its deadline (CODEX_BACKGROUND_TIMEOUT)."""

    admitted: Callable[[], None]
    timeout: float


class Executor:
    def __init__(
        self,
        engine: Engine,
        *,
        max_parallel: int,
        max_queue: int,
        queue_timeout: float,
        turn_timeout: float,
        plan: PlanLimits | None = None,
    ):
        self.engine = engine
        self.plan = plan or PlanLimits()
        self.max_parallel = max_parallel
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.turn_timeout = turn_timeout
        self._slots = asyncio.Semaphore(max_parallel)
        self.waiting = 0
        self.background_waiting = 0
        self.running = 0
        self.failures: collections.Counter[str] = collections.Counter()
        self._finishing: set[asyncio.Task[None]] = set()
        self._producers: set[asyncio.Task[None]] = set()

    def _queue_full(self, why: str) -> ApiError:
        retry_after = str(max(1, int(self.queue_timeout // 4)))
        return ApiError(429, why, code="queue_full", headers={"Retry-After": retry_after})

    async def _admit(self) -> None:
        """Wait for a slot (raises 429 when the queue is full or the wait runs out)."""
        if self._slots.locked() and self.waiting >= self.max_queue:
            raise self._queue_full(
                f"Too many requests: {self.max_parallel} running and {self.waiting} queued. Retry later."
            )
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_timeout)
        except TimeoutError:
            raise self._queue_full(f"No Codex slot became free within {self.queue_timeout:g} s. Retry later.") from None
        finally:
            self.waiting -= 1

    async def _admit_background(self, background: BackgroundAdmission) -> None:
        self.background_waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.background_waiting -= 1
        background.admitted()

    def background_room(self, waiting: int, max_waiting: int) -> None:
        """429 if a new background turn would wait behind `max_waiting` others already waiting."""
        if self._slots.locked() and waiting >= max_waiting:
            raise self._queue_full(
                f"Too many background responses: {self.max_parallel} running and {waiting} queued. Retry later."
            )

    async def events(
        self, turn: Turn, stats: TurnStats | None = None, background: BackgroundAdmission | None = None
    ) -> AsyncGenerator[TurnEvent, None]:
        """Admit the turn (429 raised from the first step), run it, end with one Completed or Failed.

        The engine runs in its own task so the deadline and a client's disconnect (closing this generator)
        cancel it wherever it is; the engine's own cleanup kills its Codex process. A background turn is admitted
        as BackgroundAdmission says.
        """
        asked, started = time.perf_counter(), self.plan.clock()
        await self.plan.admit()  # a reached plan limit: 429 without starting Codex (but a probe a minute)
        if background is not None:
            await self._admit_background(background)
        else:
            await self._admit()
        if stats is not None:
            stats.queue_wait_ms = round((time.perf_counter() - asked) * 1000, 1)
        queue: asyncio.Queue[object] = asyncio.Queue()

        async def produce() -> None:
            try:
                async for event in self.engine.run(turn):
                    queue.put_nowait(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an engine bug must still end the turn cleanly
                log.exception("engine failed")
                queue.put_nowait(Failed(FailureKind.CRASHED, f"Codex engine error: {exc}"))
            finally:
                queue.put_nowait(_END)

        loop = asyncio.get_running_loop()
        timeout = background.timeout if background is not None else self.turn_timeout
        deadline = loop.time() + timeout
        self.running += 1
        task = asyncio.create_task(produce())
        self._producers.add(task)
        task.add_done_callback(self._producers.discard)
        ended = False
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    name = "CODEX_BACKGROUND_TIMEOUT" if background is not None else "CODEX_TIMEOUT"
                    message = f"Codex did not finish within {name}={timeout:g} s."
                    yield self.note(Failed(FailureKind.TIMEOUT, message), stats)
                    return
                if item is _END:
                    yield self.note(Failed(FailureKind.CRASHED, "Codex ended the turn without an answer."), stats)
                    return
                ended = isinstance(item, TERMINAL)
                item = self.plan_noted(item, started)
                self.note(item, stats)
                yield item  # type: ignore[misc]
                if ended:
                    return
        finally:
            self.running -= 1
            self._slots.release()
            if ended:  # the engine tidies up after its answer without holding the response back
                self._finishing.add(task)
                task.add_done_callback(self._finishing.discard)
            else:  # deadline or disconnect: stop the engine now
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def plan_noted(self, event: object, started: float) -> object:
        """A reached plan limit starts refusals (and its failure says until when); an answer ends them."""
        if isinstance(event, Failed) and event.kind is FailureKind.USAGE_LIMIT:
            return self.plan.limit_hit(event.message)
        if isinstance(event, Completed):
            self.plan.turn_worked(started)
        return event

    def note(self, event: object, stats: TurnStats | None) -> Any:
        """Count failures; put tokens and failures on the request's stats."""
        if isinstance(event, Failed):
            self.failures[event.kind.value] += 1
            if stats is not None:
                stats.error = event.kind.value
        elif isinstance(event, UsageReport) and stats is not None:
            stats.input_tokens, stats.output_tokens = event.usage.input_tokens, event.usage.output_tokens
        return event

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop every turn still running and wait (bounded) for the engines to clean up after them."""
        for task in self._producers:
            task.cancel()
        pending = self._producers | self._finishing
        if pending:
            await asyncio.wait(pending, timeout=grace)
