"""A strict Host header and its allow-list (DNS rebinding).

A Host header is parsed strictly: exactly one, holding a host name, an IPv4 address or a bracketed IPv6 address, and an
optional port; nothing else (no user info, nothing after the brackets). Anything else is a 400 `invalid_host`.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from starlette.types import ASGIApp, Receive, Scope, Send

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
