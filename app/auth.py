"""Bearer tokens (constant time, several keys allowed) and the per-caller requests-per-minute limit."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time

from fastapi import Request
from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string

from app.config import ConfigError
from app.errors import ApiError

log = logging.getLogger("codex_wrapper")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_api_key(request: Request, keys: tuple[str, ...]) -> None:
    """401 unless the bearer token equals one of `keys`; every key is compared, in constant time."""
    if not keys:
        return
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "Missing API key: send 'Authorization: Bearer <PROXY_API_KEY>'.", code="invalid_api_key")
    given = token.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    if not matched:
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


def caller_key(request: Request, auth_on: bool) -> str:
    """Who a request counts against: its (already accepted) API key, else, with auth off, the client address."""
    token = bearer_token(request)
    if auth_on and token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:24]
    return "ip:" + (request.client.host if request.client else "unknown")


class RateLimiter:
    """A moving one-minute window per caller in `limits` storage (memory://, or redis:// shared by instances).

    If the storage fails, requests are let through: one warning when it starts failing, one when it is back."""

    def __init__(self, per_minute: int, storage_uri: str = "memory://", timeout: float = 2.0) -> None:
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.storage_errors = 0
        self._failing = False
        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        options = {"connect_timeout": timeout, "stream_timeout": timeout} if "redis" in uri.split("://")[0] else {}
        try:
            self.limiter = MovingWindowRateLimiter(storage_from_string(uri, **options)) if self.item else None
        except ConfigurationError as exc:
            raise ConfigError(f"invalid setting RATE_LIMIT_STORAGE_URI={storage_uri!r}: {exc}") from None

    async def check(self, key: str) -> None:
        if self.item is None or self.limiter is None:
            return
        try:
            allowed = await self.limiter.hit(self.item, "codex-wrapper", key)
        except Exception as exc:  # an unreachable shared store must not take the API down
            self.storage_errors += 1
            if not self._failing:
                log.warning("rate-limit storage failed (%s); requests are let through until it is back", exc)
            self._failing = True
            return
        if self._failing:
            log.warning("rate-limit storage is back; limits apply again")
            self._failing = False
        if allowed:
            return
        try:
            stats = await self.limiter.get_window_stats(self.item, "codex-wrapper", key)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:  # the storage failed in between: the window's full length is a safe answer
            retry_after = 60
        raise ApiError(
            429,
            f"Rate limit reached: {self.item.amount} requests per minute.",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(retry_after)},
        )
