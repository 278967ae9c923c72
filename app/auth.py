"""Bearer-token check (constant time) and a per-caller requests-per-minute limit."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque

from fastapi import Request

from app.errors import ApiError


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_api_key(request: Request, expected: str | None) -> None:
    if expected is None:
        return
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "Missing API key: send 'Authorization: Bearer <PROXY_API_KEY>'.", code="invalid_api_key")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


def caller_key(request: Request) -> str:
    """Who a request counts against: a hash of its token, else the client address."""
    token = bearer_token(request)
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


class RateLimiter:
    """Sliding one-minute window per caller; 0 disables it."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, now: float | None = None) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            retry_after = max(1, int(60 - (now - hits[0])) + 1)
            raise ApiError(
                429,
                f"Rate limit reached: {self.per_minute} requests per minute.",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(retry_after)},
            )
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle callers
            for stale in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60]:
                del self._hits[stale]
