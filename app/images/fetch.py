"""Fetching an image for Codex, which takes inline images only: data URLs checked, http(s) URLs fetched safely.

A fetch goes only to public addresses: the host is resolved and every address checked before connecting, the
address actually connected to is checked again (DNS rebinding), and so is every redirect hop. Only image content
types, at most CODEX_MAX_IMAGE_BYTES, within CODEX_IMAGE_TIMEOUT_SECONDS.

A request names at most CODEX_MAX_IMAGES_PER_REQUEST images of at most CODEX_MAX_IMAGE_BYTES_PER_REQUEST together,
fetched CODEX_IMAGE_FETCHES_PER_REQUEST at a time, and the whole server fetches CODEX_IMAGE_FETCHES_PER_SERVER at a
time: a small request cannot make the gateway fetch without end, nor hold more than its share in memory.

Codex decodes every image it is given, so a few hundred KB of PNG can stand for gigabytes of pixels (a decompression
bomb). Every image's dimensions are read from its header (app/images/size.py, in a worker thread), and an image above
CODEX_MAX_IMAGE_PIXELS, or a request whose images pass CODEX_MAX_IMAGE_PIXELS_PER_REQUEST together, is a 400; so is
an image whose header cannot be read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from app.config import Settings
from app.errors import ApiError, invalid
from app.images.size import UnreadableImage, read_header

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)(?P<params>(;[\w.+-]+=[\w.+-]+)*);base64,(?P<data>.*)$", re.S)
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class ImageRef:
    """An image named by a request: its URL and where it stands in the request (for errors)."""

    url: str
    param: str


def _refuse(ref: ImageRef, why: str, code: str = "invalid_image_url") -> ApiError:
    return invalid(f"Cannot use the image at '{ref.param}': {why}.", param=ref.param, code=code)


def decode_data_url(url: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a base64 data URL, or None when it is not one."""
    match = _DATA_URL.match(url)
    if match is None:
        return None
    try:
        return match["type"].lower(), base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        return None


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def address_allowed(address: str, allow_loopback: bool) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):  # IPv6 forms that carry an IPv4 address: judge that address
        if any(ip in net for net in _NAT64):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        else:
            ip = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None) or ip
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Budget:
    """The image bytes one request may still use (CODEX_MAX_IMAGE_BYTES_PER_REQUEST), counted as they arrive, and
    its pixels (CODEX_MAX_IMAGE_PIXELS_PER_REQUEST)."""

    def __init__(self, limit: int, pixel_limit: int = 2 * 4096 * 4096) -> None:
        self.limit = limit
        self.used = 0
        self.pixel_limit = pixel_limit
        self.pixels = 0

    def take_pixels(self, ref: ImageRef, pixels: int) -> None:
        self.pixels += pixels
        if self.pixels > self.pixel_limit:
            why = (
                f"the request's images pass CODEX_MAX_IMAGE_PIXELS_PER_REQUEST ({self.pixel_limit} pixels together); "
                "send fewer or smaller images"
            )
            raise _refuse(ref, why, "images_too_many_pixels")

    def take(self, ref: ImageRef, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            why = f"the request's images pass CODEX_MAX_IMAGE_BYTES_PER_REQUEST ({self.limit} bytes together)"
            raise _refuse(ref, why, "images_too_large")


@dataclass(frozen=True)
class ImageLimits:
    per_request: int = 16  # images
    bytes_per_request: int = 24 * 1024 * 1024
    fetches_per_request: int = 4
    fetches_per_server: int = 16
    pixels: int = 4096 * 4096  # one image's width x height
    pixels_per_request: int = 2 * 4096 * 4096

    def budget(self) -> Budget:
        return Budget(self.bytes_per_request, self.pixels_per_request)


class ImageFetcher:
    def __init__(
        self,
        max_bytes: int,
        timeout: float,
        allow_loopback: bool = False,
        resolver: Resolver = resolve_host,
        limits: ImageLimits = ImageLimits(),
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.allow_loopback = allow_loopback
        self.resolver = resolver
        self.limits = limits
        self.server_slots = asyncio.Semaphore(limits.fetches_per_server)

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageFetcher:
        limits = ImageLimits(
            settings.codex_max_images_per_request,
            settings.codex_max_image_bytes_per_request,
            settings.codex_image_fetches_per_request,
            settings.codex_image_fetches_per_server,
            settings.codex_max_image_pixels,
            settings.codex_max_image_pixels_per_request,
        )
        return cls(
            settings.codex_max_image_bytes,
            settings.codex_image_timeout_seconds,
            settings.codex_image_allow_loopback,
            limits=limits,
        )

    async def data_url(self, ref: ImageRef, budget: Budget | None = None) -> str:
        """The image as a data URL Codex accepts; 400 naming the part when it cannot be had."""
        budget = budget or self.limits.budget()
        url = ref.url.strip()
        if url.startswith("data:"):
            decoded = decode_data_url(url)
            if decoded is None:
                raise _refuse(ref, "not a base64 data URL")
            budget.take(ref, len(decoded[1]))
            return await self._checked(ref, *decoded, budget)
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https"):
            raise _refuse(ref, f"only data:, http: and https: URLs are allowed, not {scheme or 'this'}")
        try:
            async with self.server_slots:
                content_type, body = await asyncio.wait_for(self._fetch(ref, url, budget), self.timeout)
        except TimeoutError:
            raise _refuse(ref, f"no answer within {self.timeout:g} s", "image_fetch_failed") from None
        except (httpx.HTTPError, ValueError) as exc:  # connection refused, broken URL or headers, …
            raise _refuse(ref, f"fetching it failed ({type(exc).__name__})", "image_fetch_failed") from None
        return await self._checked(ref, content_type, body, budget)

    async def _checked(self, ref: ImageRef, content_type: str, body: bytes, budget: Budget) -> str:
        if content_type not in IMAGE_TYPES:
            raise _refuse(ref, f"{content_type or 'unknown content'} is not one of {', '.join(IMAGE_TYPES)}")
        if len(body) > self.max_bytes:
            raise _refuse(ref, f"larger than CODEX_MAX_IMAGE_BYTES ({self.max_bytes} bytes)", "image_too_large")
        if not body:
            raise _refuse(ref, "it is empty")
        await self._measure(ref, body, budget)
        return f"data:{content_type};base64,{base64.b64encode(body).decode()}"

    async def _measure(self, ref: ImageRef, body: bytes, budget: Budget) -> None:
        """Its dimensions from its header, never its pixels; 400 above the pixel limits or when unreadable."""
        limit = self.limits.pixels
        try:
            header = await asyncio.to_thread(read_header, body, limit)
        except UnreadableImage:
            raise _refuse(
                ref, "it is not a PNG, JPEG, GIF or WebP image whose size can be read", "invalid_image"
            ) from None
        if header.pixels > limit:
            why = (
                f"it is {header.width}x{header.height} pixels, above CODEX_MAX_IMAGE_PIXELS ({limit} pixels); "
                "send a smaller one (Codex shrinks every image to about 1600x1600 pixels before the model sees it)"
            )
            raise _refuse(ref, why, "image_too_many_pixels")
        budget.take_pixels(ref, header.pixels)

    async def _check_host(self, ref: ImageRef, url: httpx.URL) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise _refuse(ref, "redirected to something that is not an http(s) URL")
        if url.userinfo:
            raise _refuse(ref, "URLs with credentials are not fetched")
        try:
            addresses = await self.resolver(url.host, url.port or (443 if url.scheme == "https" else 80))
        except OSError:
            raise _refuse(ref, f"cannot resolve {url.host}", "image_fetch_failed") from None
        if not addresses or not all(address_allowed(address, self.allow_loopback) for address in addresses):
            raise _refuse(ref, f"{url.host} is not a public address")

    async def _fetch(self, ref: ImageRef, start: str, budget: Budget) -> tuple[str, bytes]:
        url = httpx.URL(start)
        async with httpx.AsyncClient(follow_redirects=False, timeout=self.timeout, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                await self._check_host(ref, url)
                async with client.stream("GET", url, headers={"Accept": ", ".join(IMAGE_TYPES)}) as response:
                    stream = response.extensions.get("network_stream")
                    peer = stream.get_extra_info("server_addr") if stream is not None else None
                    if peer is not None and not address_allowed(str(peer[0]), self.allow_loopback):
                        raise _refuse(ref, f"{url.host} resolved to a non-public address")
                    if response.is_redirect:
                        url = url.join(response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise _refuse(ref, f"the server answered {response.status_code}", "image_fetch_failed")
                    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if content_type not in IMAGE_TYPES:
                        raise _refuse(ref, f"{content_type or 'unknown content'} is not an image type")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > self.max_bytes:
                        raise _refuse(
                            ref, f"larger than CODEX_MAX_IMAGE_BYTES ({self.max_bytes} bytes)", "image_too_large"
                        )
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        budget.take(ref, len(chunk))
                        if len(body) > self.max_bytes:
                            raise _refuse(
                                ref, f"larger than CODEX_MAX_IMAGE_BYTES ({self.max_bytes} bytes)", "image_too_large"
                            )
                    return content_type, bytes(body)
        raise _refuse(ref, f"more than {MAX_REDIRECTS} redirects")
