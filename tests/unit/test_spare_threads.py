"""When spare threads are refilled, and that every thread is released whatever the worker is doing (a fake
session: the pure scheduling logic of app/engines/app_server/spare_threads.py and the engine's turn loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from app.engines.app_server.engine import AppServerEngine
from app.engines.app_server.spare_threads import SpareThreads
from app.turn import Completed, Message, RunPolicy, Turn


class FakeSession:
    """An RpcSession answering thread/start (only what SpareThreads uses)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.count = 0

    async def request(self, method: str, params: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.count += method == "thread/start"
        self.started.put_nowait(f"t{self.count}")
        return {"thread": {"id": f"t{self.count}"}}


async def test_a_refill_waits_for_an_idle_worker_or_the_cap() -> None:
    spares, session = SpareThreads(depth=1, refill_cap=0.2), FakeSession()
    spares.refill(session, {"a": 1}, busy=True)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert session.count == 0
    spares.idle(session)  # type: ignore[arg-type]
    assert await asyncio.wait_for(session.started.get(), 5) == "t1"
    await asyncio.sleep(0)  # the spare is stored once thread/start has answered
    assert spares.take(session, {"a": 1}) == "t1"  # type: ignore[arg-type]
    spares.refill(session, {"a": 1}, busy=True)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    asked = loop.time()
    assert await asyncio.wait_for(session.started.get(), 5) == "t2"  # the worker stayed busy: started at the cap
    assert loop.time() - asked >= 0.2
    spares.refill(session, {"b": 1}, busy=False)  # type: ignore[arg-type]
    assert await asyncio.wait_for(session.started.get(), 5) == "t3"
    await spares.stop()


class TurnSession(FakeSession):
    """Also runs turns: each completes once `go` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.queues: dict[str, asyncio.Queue[dict[str, Any] | None]] = {}
        self.unsubscribed: list[str] = []

    async def request(self, method: str, params: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if method == "thread/unsubscribe":
            self.unsubscribed.append(params["threadId"])
        if method == "turn/start":
            asyncio.get_running_loop().create_task(self._complete(params["threadId"]))
            return {"turn": {"id": "turn"}}
        return await super().request(method, params, timeout)

    async def _complete(self, thread_id: str) -> None:
        await self.go.wait()
        self.queues[thread_id].put_nowait({"method": "turn/completed", "params": {"turn": {"status": "completed"}}})

    def subscribe(self, thread_id: str, requests: object = ()) -> asyncio.Queue[dict[str, Any] | None]:
        return self.queues.setdefault(thread_id, asyncio.Queue())

    def unsubscribe(self, thread_id: str) -> None:
        pass


async def test_every_thread_is_released_while_other_turns_run(tmp_path: Path) -> None:
    session = TurnSession()
    worker = SimpleNamespace(session=session, active=0)
    engine = AppServerEngine.__new__(AppServerEngine)
    engine.pool = SimpleNamespace(acquire=lambda wait: asyncio.sleep(0, worker))  # type: ignore[assignment]
    engine.wait, engine.spares, engine._cleanups = 1.0, SpareThreads(depth=0), set()
    turn = Turn("m", (Message("user", "q"),), RunPolicy("read-only", "high", False, tmp_path))

    async def one() -> list[object]:
        return [event async for event in engine.run(turn)]

    runs = [asyncio.create_task(one()) for _ in range(3)]
    while session.count < 3:
        await session.started.get()
    session.go.set()
    for events in await asyncio.gather(*runs):
        assert isinstance(events[-1], Completed)
    await asyncio.gather(*engine._cleanups)
    assert sorted(session.unsubscribed) == ["t1", "t2", "t3"]  # the first two ended while another turn ran
    await engine.spares.stop()
