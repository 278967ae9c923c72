"""The HTTP surface's own limits: a strict Host header and its allow-list (DNS rebinding), and a bound on request
headers' size and time.

A Host header is parsed strictly: exactly one, holding a host name, an IPv4 address or a bracketed IPv6 address, and an
optional port; nothing else (no user info, nothing after the brackets). Anything else is a 400 `invalid_host`.

The header limits live in the HTTP protocol itself (a subclass of uvicorn's httptools protocol): an ASGI app sees a
request only once its headers are complete, by which time a 48 MB header would already have been read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.codex.provider import is_loopback_host
from app.config import Settings
from app.errors import ApiError
from app.middleware.reply import send_error

log = logging.getLogger("codex_wrapper")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(settings: Settings) -> tuple[str, ...] | None:
    """Host names the server answers to; None: any. CODEX_ALLOWED_HOSTS when set (`*`: any); otherwise the
    loopback names when the server listens on loopback without API keys (a browser page could reach it)."""
    if settings.codex_allowed_hosts is not None:
        hosts = tuple(_canonical(h.lower().strip("[]")) for h in settings.codex_allowed_hosts)
        return None if "*" in hosts else hosts
    if not settings.api_keys and is_loopback_host(settings.host):
        return LOOPBACK_NAMES
    return None


def _canonical(host: str) -> str:
    """An IPv6 address in its one short form (as host_name gives it); anything else as it is."""
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError:
        return host


_HOST = re.compile(
    r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?\.?))(?::(?P<port>[0-9]{1,5}))?"
)


def host_name(header: str) -> str | None:
    """The name in a Host header, lowercase, without its port, IPv6 without brackets; None for anything that is
    not exactly a host name or IP address and an optional port."""
    match = _HOST.fullmatch(header.strip().lower())
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        return None
    if match["ip6"] is not None:
        try:
            return str(ipaddress.IPv6Address(match["ip6"]))
        except ValueError:
            return None
    name = match["name"].removesuffix(".")
    if ".." in name or any(label.startswith("-") or label.endswith("-") for label in name.split(".")):
        return None
    return name


def host_of(scope: Scope) -> tuple[str | None, str | None]:
    """(the host name, what is wrong with the Host headers) of a request: one well-formed Host header gives its
    name; none gives (None, None), as HTTP/1.0 allows; several or a malformed one give a problem."""
    values = [value for key, value in scope.get("headers") or [] if key.lower() == b"host"]
    if len(values) > 1:
        return None, f"The request has {len(values)} Host headers; exactly one is allowed."
    if not values:
        return None, None
    raw = values[0].decode("latin-1")
    name = host_name(raw)
    if name is None:
        return None, f"The Host header {raw!r} is not a host name or IP address with an optional port."
    return name, None


def host_allowed(name: str, hosts: tuple[str, ...]) -> bool:
    return any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in hosts)


class HostAllowList:
    """ASGI middleware: 400 `invalid_host` for a missing, repeated or malformed Host header, or one not in the
    allow-list (`hosts`; None: any well-formed host, and a request without Host, as HTTP/1.0 allows)."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name, problem = host_of(scope)
        if problem is None and self.hosts is not None:
            if name is None:
                problem = "The request has no Host header."
            elif not host_allowed(name, self.hosts):
                problem = (
                    f"Host {name!r} is not served here: allowed are {', '.join(self.hosts)} (CODEX_ALLOWED_HOSTS)."
                )
        if problem is not None:
            await send_error(send, ApiError(400, problem, code="invalid_host"))
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
