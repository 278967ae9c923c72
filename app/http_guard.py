"""The HTTP surface's own limits: a Host allow-list (DNS rebinding), and a bound on request headers' size and time.

The header limits live in the HTTP protocol itself (a subclass of uvicorn's httptools protocol): an ASGI app sees a
request only once its headers are complete, by which time a 48 MB header would already have been read.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings
from app.errors import ApiError
from app.observability import send_error
from app.provider import is_loopback_host

log = logging.getLogger("codex_wrapper")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(settings: Settings) -> tuple[str, ...] | None:
    """Host names the server answers to; None: any. CODEX_ALLOWED_HOSTS when set (`*`: any); otherwise the
    loopback names when the server listens on loopback without API keys (a browser page could reach it)."""
    if settings.codex_allowed_hosts is not None:
        hosts = tuple(h.lower().strip("[]") for h in settings.codex_allowed_hosts)
        return None if "*" in hosts else hosts
    if not settings.api_keys and is_loopback_host(settings.host):
        return LOOPBACK_NAMES
    return None


def host_name(header: str) -> str:
    """The name of a Host header, without its port; IPv6 without brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(name: str, hosts: tuple[str, ...]) -> bool:
    return any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in hosts)


class HostAllowList:
    """ASGI middleware: 400 `invalid_host` for a Host header not in the allow-list."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.hosts is None:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if not host_allowed(host_name(header), self.hosts):
            message = f"Host {header!r} is not served here: allowed are {', '.join(self.hosts)} (CODEX_ALLOWED_HOSTS)."
            await send_error(send, ApiError(400, message, code="invalid_host"))
            return
        await self.app(scope, receive, send)


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
