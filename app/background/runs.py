"""Background responses (`background: true`): the turn runs in a task the gateway owns, not in the request.

A Run renders the turn's events with the request's ResponseBuilder, keeps every event in memory (for followers on
this instance) and writes them, numbered, with the response's snapshot, to the store as it goes (for GET and
followers on every instance). Its run record in the store names this instance and carries a heartbeat; a cancel
asked on any instance sets the record's flag, which this instance reads with each heartbeat (every second). A run
whose heartbeat has stopped (its instance crashed) is marked failed by the next reader, or by the same instance
when it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from app.api.response_events import ResponseBuilder
from app.errors import ApiError
from app.executor import BackgroundAdmission, Executor
from app.store import ResponseStore, StoredResponse, StoreUnavailable
from app.turn import Completed, Failed, FailureKind, TurnEvent

log = logging.getLogger("codex_wrapper")
ACTIVE = ("queued", "in_progress")
TERMINAL_EVENTS = ("response.completed", "response.failed", "response.incomplete", "response.cancelled")
HEARTBEAT_SECONDS = 1.0  # how often a runner renews its runs and reads their cancel flags
LEASE_SECONDS = 30.0  # a run whose heartbeat is older than this is taken as dead (its instance crashed)
FLUSH_SECONDS = 0.2  # events are written to the store in batches at most this far apart
FINAL_WRITE_SECONDS = 10.0  # how long the last write of a run is retried while the store is down
STOPPED = "The gateway instance running this background response stopped before the response finished."

Render = Callable[[TurnEvent], Awaitable[list[dict[str, Any]]]]
Events = Callable[[BackgroundAdmission], AsyncGenerator[TurnEvent, None]]


class Run:
    """One background response running on this instance."""

    def __init__(
        self,
        runs: BackgroundRuns,
        owner: str,
        builder: ResponseBuilder,
        snapshot: Callable[[], StoredResponse],
        events: Events,
        render: Render,
    ) -> None:
        self.runs = runs
        self.owner = owner
        self.builder = builder
        self.snapshot = snapshot  # the StoredResponse as it stands (the final one once the turn has ended)
        self._events = events
        self._render = render
        self.events: list[dict[str, Any]] = []  # every event so far; an event's index is its sequence number
        self.flushed = 0  # how many of them are in the store
        self.done = asyncio.Event()
        self.stop_reason: str | None = None  # "cancelled" or "shutdown"
        self._wake = asyncio.Event()
        self._dirty = asyncio.Event()
        self._write = asyncio.Lock()
        self._work: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.builder.id

    def add(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        self.events.extend(copy.deepcopy(events))  # as they are now: the builder goes on changing its items
        self._dirty.set()
        self._wake.set()
        self._wake = asyncio.Event()

    async def wait_beyond(self, count: int) -> None:
        """Until there are more than `count` events, or the run is over."""
        while len(self.events) <= count and not self.done.is_set():
            await self._wake.wait()

    def stop(self, reason: str) -> None:
        """Cancel the turn (the executor's cancellation: turn/interrupt, or exec's process group)."""
        if self.stop_reason is not None or self.done.is_set():
            return
        self.stop_reason = reason
        if self._work is not None:
            self._work.cancel()

    def _admitted(self) -> None:
        if self.builder.status == "queued":
            self.add(self.builder.in_progress())

    async def _consume(self) -> None:
        events = self._events(BackgroundAdmission(self._admitted, self.runs.timeout))
        try:
            async for event in events:
                self.add(await self._render(event))
                if isinstance(event, Completed | Failed):
                    return
        except ApiError as exc:
            self.add(self.builder.fail(exc))
        finally:
            await events.aclose()

    async def drive(self) -> None:
        self._work = asyncio.create_task(self._consume())
        if self.stop_reason is not None:  # stopped before it began
            self._work.cancel()
        flusher = asyncio.create_task(self._flush_loop())
        try:
            await self._work
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
        except Exception:  # a bug must still end the response
            log.exception("background response %s failed", self.id)
            self.add(self.builder.fail(Failed(FailureKind.CRASHED, "The gateway failed while running the turn.")))
        finally:
            flusher.cancel()
            if self.builder.status in ACTIVE:
                if self.stop_reason == "cancelled":
                    self.add(self.builder.end("cancelled", ""))
                else:
                    self.add(self.builder.end("failed", STOPPED))
            await self._final_write()
            self.done.set()
            self._wake.set()
            self.runs.local.pop(self.id, None)

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(FLUSH_SECONDS)  # a batch, not one write per delta
            self._dirty.clear()
            await self.flush()

    async def flush(self, *, begin: str | None = None, end: bool = False) -> bool:
        """Write the events not yet stored and the snapshot; whether it was written."""
        async with self._write:
            pending = self.events[self.flushed :]
            try:
                await self.runs.store.save_run(self.owner, self.snapshot(), pending, self.flushed, begin=begin, end=end)
            except StoreUnavailable:
                return False
            self.flushed += len(pending)
            return True

    async def _final_write(self) -> None:
        deadline = time.monotonic() + FINAL_WRITE_SECONDS
        while not await self.flush(end=True):
            if time.monotonic() > deadline:
                log.error("background response %s ended %s but could not be stored", self.id, self.builder.status)
                return
            await asyncio.sleep(0.5)


class BackgroundRuns:
    """This instance's background responses, its heartbeat, and cancel and recovery on any instance."""

    def __init__(
        self, store: ResponseStore, executor: Executor | None, instance: str, max_waiting: int, timeout: float
    ) -> None:
        self.store = store
        self.executor = executor
        self.instance = instance
        self.max_waiting = max_waiting
        self.timeout = timeout  # a background turn's deadline
        self.local: dict[str, Run] = {}
        self._heart: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fail the runs a crash of this instance left behind, then keep the heartbeat of its runs."""
        try:
            left = await self.store.runs_of(self.instance)
        except StoreUnavailable:
            left = []
        for owner, response_id in left:
            with contextlib.suppress(StoreUnavailable):
                await self.fail_orphan(owner, response_id)
        if left:
            log.warning("%d background responses left running by an earlier run of this instance: failed", len(left))
        self._heart = asyncio.create_task(self._heartbeat())

    def queued(self) -> int:
        return sum(run.builder.status == "queued" for run in self.local.values())

    def check_room(self) -> None:
        if self.executor is not None:
            self.executor.background_room(self.queued(), self.max_waiting)

    async def launch(
        self,
        owner: str,
        builder: ResponseBuilder,
        snapshot: Callable[[], StoredResponse],
        events: Events,
        render: Render,
    ) -> Run:
        """Store the queued response (StoreUnavailable if it cannot be), then run it in a task of its own."""
        self.check_room()
        run = Run(self, owner, builder, snapshot, events, render)
        builder.status = "queued"
        run.add(builder.created())
        async with run._write:
            await self.store.save_run(owner, run.snapshot(), run.events, 0, begin=self.instance)
            run.flushed = len(run.events)
        self.local[run.id] = run
        run.task = asyncio.create_task(run.drive())
        return run

    def mine(self, owner: str, response_id: str) -> Run | None:
        run = self.local.get(response_id)
        return run if run is not None and run.owner == owner else None

    async def current(self, owner: str, stored: StoredResponse) -> dict[str, Any]:
        """The response as it stands: this instance's live copy, or the store's (a dead runner's run failed)."""
        response = stored.response
        if response.get("background") and response.get("status") in ACTIVE:
            if run := self.mine(owner, response["id"]):
                return run.builder.response()
            if await self.settle(owner, response["id"]):
                fresh = await self.store.get(owner, response["id"])
                return fresh.response if fresh is not None else response
        return response

    async def settle(self, owner: str, response_id: str) -> bool:
        """Fail the response if it is active but nobody runs it any more; whether it did."""
        if self.mine(owner, response_id) is not None:
            return False
        record = await self.store.run_record(owner, response_id)
        if record is not None and time.time() - record.beat < LEASE_SECONDS:
            return False
        return await self.fail_orphan(owner, response_id)

    async def fail_orphan(self, owner: str, response_id: str) -> bool:
        """Mark a response whose runner is gone as failed, with its terminal event; whether it was active."""
        stored = await self.store.get(owner, response_id)
        if stored is None or stored.response.get("status") not in ACTIVE:
            if stored is not None:
                await self.store.save_run(owner, stored, [], 0, end=True)
            return False
        events = await self.store.run_events(owner, response_id, -1)
        sequence = events[-1]["sequence_number"] + 1 if events else 0
        error = {"code": "server_error", "message": STOPPED}
        response = {**stored.response, "status": "failed", "error": error}
        failed = {"type": "response.failed", "sequence_number": sequence, "response": response}
        kept = StoredResponse(response, stored.input_items, stored.conversation)
        await self.store.save_run(owner, kept, [failed], sequence, end=True)
        log.warning("background response %s: its runner is gone, marked failed", response_id)
        return True

    async def cancel(self, owner: str, response_id: str, wait: float = 10.0) -> dict[str, Any] | None:
        """Cancel a running response here or on the instance that runs it; the response once it has ended (or as
        it stands after `wait` seconds)."""
        if run := self.mine(owner, response_id):
            run.stop("cancelled")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.done.wait(), wait)
            return run.builder.response()
        if not await self.store.request_cancel(owner, response_id):
            await self.settle(owner, response_id)
        deadline = time.monotonic() + wait
        while True:
            stored = await self.store.get(owner, response_id)
            if stored is None or stored.response.get("status") not in ACTIVE or time.monotonic() > deadline:
                return stored.response if stored is not None else None
            await asyncio.sleep(0.1)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            runs = [(run.owner, run.id) for run in self.local.values()]
            if not runs:
                continue
            try:
                flagged = await self.store.beat(self.instance, runs)
            except StoreUnavailable:
                continue
            except Exception:  # the heartbeat must outlive a bug
                log.exception("background heartbeat failed")
                continue
            for response_id in flagged:
                if run := self.local.get(response_id):
                    log.info("background response %s: cancelled from another instance", response_id)
                    run.stop("cancelled")

    async def shutdown(self, grace: float = 15.0) -> None:
        """Stop the heartbeat and every run still going; each is stored as failed (the gateway stopped)."""
        if self._heart is not None:
            self._heart.cancel()
        runs = list(self.local.values())
        for run in runs:
            run.stop("shutdown")
        tasks = [run.task for run in runs if run.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
            log.warning("%d background responses were running at shutdown: stored as failed", len(tasks))
