"""The interface every engine offers: a Turn in, a stream of TurnEvents out. Both engines (exec.py,
app_server/) subclass `Engine`; so does the FakeEngine of the in-process tests."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator

from app.turn import Turn, TurnEvent


class Engine(ABC):
    name: str
    client_tools: bool  # whether a Turn may carry the client's functions

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def prewarm(self, turn: Turn) -> None:
        """Prepare ahead for requests shaped like `turn` (the server's defaults); may do nothing."""
        return None

    async def reload(self) -> None:
        """Let Codex see a login made since start (restart long-lived processes); may do nothing."""
        return None

    @abstractmethod
    def ready(self) -> bool:
        """Whether a turn could start now."""

    @abstractmethod
    def status(self) -> str:
        """One line for /ready."""

    def restarts(self) -> int:
        """How often the engine restarted a Codex process it keeps (for /metrics); 0 for one that keeps none."""
        return 0

    @abstractmethod
    def run(self, turn: Turn) -> AsyncGenerator[TurnEvent, None]:
        """Events of one turn, ending with Completed or Failed; closing it stops the turn's Codex work."""
