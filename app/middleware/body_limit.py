"""The request body's bounds: over CODEX_MAX_REQUEST_BYTES a 413, not in within
CODEX_REQUEST_READ_TIMEOUT_SECONDS a 408."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ApiError, BodyTooLarge
from app.middleware.reply import send_error


class BodyLimit:
    """ASGI middleware: a request body above `limit` bytes is a 413, whether declared or streamed (chunked); a body
    that has not fully arrived `timeout` seconds after the request began is a 408."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float = 30.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            await send_error(send, self._too_large())
            return
        seen, done, started = 0, False, False
        refusal: ApiError | None = None
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counted() -> Message:
            nonlocal seen, done, refusal
            if done:  # the body is in: what follows is the wait for a disconnect, untimed
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except TimeoutError:
                refusal = self._too_slow()
                raise BodyTooLarge(refusal.message) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if seen > self.limit:
                    refusal = self._too_large()
                    raise BodyTooLarge(refusal.message)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal is None:  # once refused, the app's own answer (FastAPI's 400 for a body it could not read) goes
                started = started or message["type"] == "http.response.start"
                await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counted, guarded_send)
        if refusal is not None and not started:
            await send_error(send, refusal)

    def _too_large(self) -> ApiError:
        message = f"The request body is larger than CODEX_MAX_REQUEST_BYTES ({self.limit} bytes)."
        return ApiError(413, message, code="request_too_large")

    def _too_slow(self) -> ApiError:
        message = f"The request body did not arrive within CODEX_REQUEST_READ_TIMEOUT_SECONDS ({self.timeout:g} s)."
        return ApiError(408, message, code="request_timeout")
