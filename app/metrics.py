"""Metrics (/metrics, Prometheus text format), one JSON log line per request, and the x-request-id header."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ApiError, BodyTooLarge

access_log = logging.getLogger("codex_wrapper.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


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


class GatewayCollector:
    """Gauges and counters read from the running gateway at scrape time."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        state = self.read()
        yield GaugeMetricFamily("codex_wrapper_queue_depth", "Turns waiting for a Codex slot", value=state["waiting"])
        yield GaugeMetricFamily("codex_wrapper_turns_in_flight", "Turns running in Codex", value=state["running"])
        yield GaugeMetricFamily(
            "codex_wrapper_background_responses",
            "Background responses this instance runs or queues",
            value=state.get("background", 0),
        )
        yield CounterMetricFamily(
            "codex_wrapper_codex_restarts", "Codex app-server worker restarts", value=state["restarts"]
        )
        errors = CounterMetricFamily("codex_wrapper_upstream_errors", "Failed turns by kind", labels=["kind"])
        for kind, count in sorted(state["failures"].items()):
            errors.add_metric([kind], count)
        yield errors
        yield GaugeMetricFamily(
            "codex_wrapper_store_up", "1 if the response store answered its last call, else 0", value=state["store_up"]
        )
        yield CounterMetricFamily(
            "codex_wrapper_store_write_failures", "Responses answered but not stored (store unavailable)",
            value=state["store_write_failures"],
        )  # fmt: skip
        yield CounterMetricFamily(
            "codex_wrapper_rate_limit_storage_errors", "Requests let through because the rate-limit storage failed",
            value=state["rate_limit_storage_errors"],
        )  # fmt: skip
        yield from plan_metrics(state.get("plan"))


def plan_metrics(plan: dict[str, Any] | None) -> Iterator[Metric]:
    """The ChatGPT plan's windows Codex last reported (app/codex/plan_limits.py), and refusals while one is used up."""
    used = GaugeMetricFamily("codex_wrapper_plan_used_percent", "Percent of the plan's window used", labels=["window"])
    reset = GaugeMetricFamily(
        "codex_wrapper_plan_reset_seconds", "Seconds until the plan's window resets", labels=["window"]
    )
    for name, (percent, seconds) in sorted(((plan or {}).get("windows") or {}).items()):
        used.add_metric([name], percent)
        if seconds is not None:
            reset.add_metric([name], seconds)
    yield used
    yield reset
    yield GaugeMetricFamily(
        "codex_wrapper_plan_limit_reached", "1 while the plan's usage limit is known to be reached",
        value=int(bool((plan or {}).get("reached"))),
    )  # fmt: skip
    yield CounterMetricFamily(
        "codex_wrapper_plan_limit_refusals", "Requests refused without a turn because the plan's limit is reached",
        value=(plan or {}).get("refusals", 0),
    )  # fmt: skip


class Metrics:
    def __init__(self, read_state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "codex_wrapper_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "codex_wrapper_request_seconds", "Request duration", ["endpoint"], buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.ttft = Histogram(
            "codex_wrapper_time_to_first_token_seconds", "Time until the first byte of the answer", ["endpoint"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(GatewayCollector(read_state))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, stats: RequestStats) -> None:
        self.requests.labels(stats.endpoint, str(stats.status)).inc()
        if stats.total_ms is not None:
            self.latency.labels(stats.endpoint).observe(stats.total_ms / 1000)
        if stats.ttft_ms is not None and stats.model is not None:
            self.ttft.labels(stats.endpoint).observe(stats.ttft_ms / 1000)


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


async def send_error(send: Send, error: ApiError) -> None:
    """Answer with `error` in the OpenAI envelope, from a middleware (outside FastAPI's handlers)."""
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
