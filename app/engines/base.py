"""The interface every engine offers: a Turn in, a stream of TurnEvents out."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from app.turn import Turn, TurnEvent


class Engine(Protocol):
    name: str
    client_tools: bool  # whether a Turn may carry the client's functions

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def prewarm(self, turn: Turn) -> None:
        """Prepare ahead for requests shaped like `turn` (the server's defaults); may do nothing."""
        ...

    async def reload(self) -> None:
        """Let Codex see a login made since start (restart long-lived processes); may do nothing."""
        ...

    def ready(self) -> bool:
        """Whether a turn could start now."""
        ...

    def status(self) -> str:
        """One line for /ready."""
        ...

    def run(self, turn: Turn) -> AsyncGenerator[TurnEvent, None]:
        """Events of one turn, ending with Completed or Failed; closing it stops the turn's Codex work."""
        ...
