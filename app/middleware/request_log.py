"""The request log: one JSON line per request, its timing, the x-request-id header, and the metrics fed.

`RequestStats` is what one request did: the middleware makes it, `api/turn_start.py` adds the model and engine, the
executor the queue wait, tokens and failure kind (through its `TurnStats` protocol), and at the end the middleware
logs it to `codex_wrapper.access` (not for /health and /metrics) and counts it (app/metrics.py).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.metrics import Metrics

access_log = logging.getLogger("codex_wrapper.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class RequestStats:
    """What one request did; endpoints and the executor fill it, the middleware logs and counts it."""

    request_id: str
    endpoint: str = ""
    model: str | None = None
    engine: str | None = None
    status: int = 0
    queue_wait_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    _started: float = field(default_factory=time.perf_counter, repr=False)

    def log_line(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if not k.startswith("_") and v is not None}
        return json.dumps({"event": "request", **fields}, separators=(",", ":"))


def stats_of(scope_state: dict[str, Any]) -> RequestStats | None:
    return scope_state.get("stats")


class RequestObserver:
    """ASGI middleware: request id in and out, timing of the first and last body bytes, the log line, metrics."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics | None]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        stats = RequestStats(given if _REQUEST_ID.match(given) else uuid.uuid4().hex)
        scope.setdefault("state", {})["stats"] = stats

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", stats.request_id.encode())]
            elif message["type"] == "http.response.body":
                elapsed = (time.perf_counter() - stats._started) * 1000
                if stats.ttft_ms is None and message.get("body"):
                    stats.ttft_ms = round(elapsed, 1)
                if not message.get("more_body"):
                    stats.total_ms = round(elapsed, 1)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            stats.endpoint = getattr(route, "path", None) or "unmatched"
            if stats.total_ms is None:
                stats.total_ms = round((time.perf_counter() - stats._started) * 1000, 1)
            if stats.endpoint not in ("/health", "/metrics"):
                access_log.info(stats.log_line())
            if (metrics := self.metrics()) is not None:
                metrics.observe(stats)
