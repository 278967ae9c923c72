"""A request cancelled by the server's shutdown before its response began: 503 `shutting_down`, not a bare 500."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ApiError
from app.middleware.reply import send_error


class ShutdownAnswer:
    """ASGI middleware: a request the server cancels while shutting down gets a 503, not a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:  # answered below, not re-raised: the server is ending this task anyway
            if started:
                raise
            retry = ApiError(
                503, "The gateway is shutting down; retry.", code="shutting_down", headers={"Retry-After": "1"}
            )
            await send_error(send, retry)
