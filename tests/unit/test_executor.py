"""Admission and lifetime of turns, with a scripted engine (pure logic: no Codex here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.errors import ApiError
from app.executor import BackgroundAdmission, Executor
from app.turn import Completed, Failed, FailureKind, Message, RunPolicy, TextDelta, Turn, TurnEvent

TURN = Turn("m", (Message("user", "q"),), RunPolicy("read-only", "low", False, Path("/tmp")))


class ScriptedEngine:
    name = "scripted"

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.started = 0
        self.cleaned = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def run(self, turn: Turn) -> AsyncIterator[TurnEvent]:
        self.started += 1
        try:
            yield TextDelta("a")
            if self.hang:
                await asyncio.sleep(3600)
            yield Completed("a")
        finally:
            self.cleaned += 1


def executor(engine: ScriptedEngine, **limits: float) -> Executor:
    settings = {"max_parallel": 1, "max_queue": 0, "queue_timeout": 5.0, "turn_timeout": 5.0, **limits}
    return Executor(engine, **settings)  # type: ignore[arg-type]


async def drain(events: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in events]


async def test_a_turn_ends_with_completed_and_frees_its_slot() -> None:
    engine = ScriptedEngine()
    runner = executor(engine)
    assert await drain(runner.events(TURN)) == [TextDelta("a"), Completed("a")]
    assert await drain(runner.events(TURN)) == [TextDelta("a"), Completed("a")]
    await runner.shutdown()
    assert engine.cleaned == 2 and runner.running == 0


async def test_deadline_fails_the_turn_and_cancels_the_engine() -> None:
    engine = ScriptedEngine(hang=True)
    events = await drain(executor(engine, turn_timeout=0.2).events(TURN))
    assert events[0] == TextDelta("a")
    assert isinstance(events[-1], Failed) and events[-1].kind is FailureKind.TIMEOUT
    assert engine.cleaned == 1


async def test_full_queue_is_refused_at_once() -> None:
    engine = ScriptedEngine(hang=True)
    runner = executor(engine)
    holder = runner.events(TURN)
    assert await anext(holder) == TextDelta("a")
    with pytest.raises(ApiError) as caught:
        await anext(runner.events(TURN))
    assert caught.value.status == 429 and caught.value.headers["Retry-After"]
    await holder.aclose()
    assert engine.cleaned == 1
    assert await anext(runner.events(TURN)) == TextDelta("a")  # the slot is free again


async def test_queued_turn_times_out_waiting() -> None:
    engine = ScriptedEngine(hang=True)
    runner = executor(engine, max_queue=1, queue_timeout=0.1)
    holder = runner.events(TURN)
    await anext(holder)
    with pytest.raises(ApiError) as caught:
        await anext(runner.events(TURN))
    assert caught.value.code == "queue_full" and runner.waiting == 0
    await holder.aclose()


async def test_closing_the_events_cancels_the_engine() -> None:
    engine = ScriptedEngine(hang=True)
    runner = executor(engine)
    events = runner.events(TURN)
    await anext(events)
    await events.aclose()
    assert engine.cleaned == 1 and runner.running == 0


async def test_a_background_turn_waits_past_the_queue_timeout_and_has_its_own_deadline() -> None:
    engine = ScriptedEngine(hang=True)
    runner = executor(engine, queue_timeout=0.05, turn_timeout=60)
    holder = runner.events(TURN)
    assert await anext(holder) == TextDelta("a")  # the only slot is taken
    admitted: list[bool] = []
    background = BackgroundAdmission(lambda: admitted.append(True), timeout=0.2)
    waiting = runner.events(TURN, background=background)
    first = asyncio.ensure_future(anext(waiting))
    done, _ = await asyncio.wait({first}, timeout=0.2)  # past the queue timeout: a foreground turn had its 429
    assert not done and runner.background_waiting == 1 and admitted == []
    with pytest.raises(ApiError) as caught:
        runner.background_room(waiting=1, max_waiting=1)
    assert caught.value.status == 429
    runner.background_room(waiting=0, max_waiting=1)
    await holder.aclose()
    assert await first == TextDelta("a") and admitted == [True] and runner.background_waiting == 0
    rest = await drain(waiting)
    assert isinstance(rest[-1], Failed) and "CODEX_BACKGROUND_TIMEOUT=0.2" in rest[-1].message
    await runner.shutdown()
