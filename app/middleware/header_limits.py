"""A bound on a request's header bytes (431) and time (408), in the HTTP protocol itself (a subclass of uvicorn's
httptools protocol): an ASGI app sees a request only once its headers are complete, by which time a 48 MB header
would already have been read."""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings
from app.errors import ApiError


def _raw_error(status: int, reason: str, message: str, code: str) -> bytes:
    body = json.dumps(ApiError(status, message, code=code).body()).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on a request's header bytes (431) and time (408)."""

    max_header_bytes = 32 * 1024
    header_timeout = 30.0

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._in_headers = False
        self._header_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._in_headers or not self.cycle or self.cycle.response_complete:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.max_header_bytes:
            message = f"The request headers are larger than CODEX_MAX_HEADER_BYTES ({self.max_header_bytes} bytes)."
            self._refuse(_raw_error(431, "Request Header Fields Too Large", message, "headers_too_large"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        loop = asyncio.get_running_loop()
        self._header_timer = loop.call_later(self.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._stop_header_clock()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def _stop_header_clock(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        message = (
            f"The request headers did not arrive within CODEX_REQUEST_READ_TIMEOUT_SECONDS ({self.header_timeout:g} s)."
        )
        self._refuse(_raw_error(408, "Request Timeout", message, "request_timeout"))

    def _refuse(self, response: bytes) -> None:
        self._stop_header_clock()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def http_protocol(settings: Settings) -> type[LimitedHttpProtocol]:
    """The protocol class uvicorn serves with, carrying this server's limits."""
    return type(
        "GatewayHttpProtocol",
        (LimitedHttpProtocol,),
        {
            "max_header_bytes": settings.codex_max_header_bytes,
            "header_timeout": settings.codex_request_read_timeout_seconds,
        },
    )
