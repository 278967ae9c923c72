"""An engine that plays back scripted TurnEvents, and the gateway built around it in-process (no uvicorn, no Codex).

The HTTP layer (adapters, streaming, errors, middleware) runs as in production: `create_app(engine_factory=...)`
builds the real app with this engine in place of Codex's, and `in_process` drives it through httpx.ASGITransport
with the app's lifespan run. What only the real Codex can prove (engines, the sandbox, security) stays in
tests/integration.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from fastapi import FastAPI

from app.config import Settings
from app.engines.base import Engine
from app.gateway import Gateway
from app.main import create_app
from app.turn import Completed, TextDelta, Turn, TurnEvent, Usage, UsageReport

FAKE_MODEL = "fake-model"


@dataclass
class Hold:
    """A step of a script: the turn waits here until the test sets `release` (e.g. to see a client go away)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    reached: asyncio.Event = field(default_factory=asyncio.Event)


Step = TurnEvent | Hold | Exception  # an Exception is raised by the engine at that point


def answer(text: str, usage: Usage | None = None) -> tuple[TurnEvent, ...]:
    """A plain answer: the text as one delta (none when empty), usage, Completed."""
    delta = (TextDelta(text),) if text else ()
    return *delta, UsageReport(usage or Usage(3, 0, 2)), Completed(text)


class FakeEngine(Engine):
    """Implements app/engines/base.py's Engine: each run plays the next queued script (else a short answer)."""

    name = "fake"

    def __init__(self, client_tools: bool = True) -> None:
        self.client_tools = client_tools
        self.scripts: deque[tuple[Step, ...]] = deque()
        self.turns: list[Turn] = []  # every turn run, in order
        self.closed = 0  # runs that ended (finished, or closed by the gateway)
        self.started = False

    def play(self, *steps: Step) -> FakeEngine:
        """Queue the script of the next turn."""
        self.scripts.append(steps)
        return self

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def prewarm(self, turn: Turn) -> None:
        return None

    async def reload(self) -> None:
        return None

    def ready(self) -> bool:
        return self.started

    def status(self) -> str:
        return "fake engine"

    async def run(self, turn: Turn) -> AsyncGenerator[TurnEvent, None]:
        self.turns.append(turn)
        script: Iterable[Step] = self.scripts.popleft() if self.scripts else answer("ok")
        try:
            for step in script:
                if isinstance(step, Hold):
                    step.reached.set()
                    await step.release.wait()
                elif isinstance(step, Exception):
                    raise step
                else:
                    yield step
        finally:
            self.closed += 1


def fake_settings(root: Path, **values: Any) -> Settings:
    """Settings for an in-process gateway whose folders all live under `root` (a CODEX_HOME naming FAKE_MODEL)."""
    home = root / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(tomli_w.dumps({"model": FAKE_MODEL}))
    (root / "profile").mkdir(exist_ok=True)
    folders = {
        "codex_config_dir": home,
        "codex_workdir": root / "workdir",
        "codex_wrapper_profile_dir": root / "profile",
        "codex_data_dir": root / "data",
    }
    return Settings(_env_file=None, **{**folders, **values})


@dataclass
class InProcess:
    client: httpx.AsyncClient
    engine: FakeEngine
    app: FastAPI

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway


@asynccontextmanager
async def in_process(root: Path, engine: FakeEngine | None = None, **settings: Any) -> AsyncIterator[InProcess]:
    """The real app around a FakeEngine, its lifespan running, and an httpx client that calls it in-process."""
    fake = engine or FakeEngine()
    app = create_app(fake_settings(root, **settings), engine_factory=lambda _settings: as_engine(fake))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield InProcess(client, fake, app)


def sse_data(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order ("[DONE]" included)."""
    return [line.removeprefix("data: ") for line in body.splitlines() if line.startswith("data: ")]


def as_engine(engine: FakeEngine) -> Engine:
    """What create_app is given; mypy checks here that FakeEngine implements the Engine interface."""
    return engine
