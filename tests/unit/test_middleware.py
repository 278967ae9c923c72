"""app/middleware/ driven directly: BodyLimit, RequestObserver, ShutdownAnswer."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from app.middleware.body_limit import BodyLimit
from app.middleware.request_log import RequestObserver, RequestStats
from app.middleware.shutdown import ShutdownAnswer


def http_scope(headers: dict[str, str] | None = None, path: str = "/v1/chat/completions") -> dict[str, Any]:
    raw = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": path, "headers": raw}


def body_messages(*chunks: bytes) -> list[Message]:
    return [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]


class Exchange:
    """One request: the messages the app receives, and what it sent back."""

    def __init__(self, incoming: list[Message], stall: bool = False) -> None:
        self.incoming = list(incoming)
        self.stall = stall  # after the given messages, wait forever (a client that stops sending)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.incoming:
            return self.incoming.pop(0)
        if self.stall:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {name.decode(): value.decode() for name, value in start["headers"]}

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body and answers it back."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps({"got": len(body)}).encode()})


async def answers_400_on_a_broken_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Like FastAPI: a body it cannot read is its own 400."""
    try:
        await echo(scope, receive, send)
    except Exception:
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def test_body_within_the_limit_passes() -> None:
    exchange = Exchange(body_messages(b"a" * 600, b"b" * 400))
    await BodyLimit(echo, limit=1024)(http_scope(), exchange.receive, exchange.send)
    assert exchange.status == 200 and exchange.json() == {"got": 1000}


async def test_a_declared_length_above_the_limit_is_413_before_the_app() -> None:
    called = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    exchange = Exchange([])
    await BodyLimit(app, limit=1024)(http_scope({"content-length": "2048"}), exchange.receive, exchange.send)
    assert not called
    assert exchange.status == 413 and exchange.headers["content-type"] == "application/json"
    error = exchange.json()["error"]
    assert error["code"] == "request_too_large" and "CODEX_MAX_REQUEST_BYTES (1024 bytes)" in error["message"]


@pytest.mark.parametrize("app", [echo, answers_400_on_a_broken_body])
async def test_a_streamed_body_above_the_limit_is_413_whatever_the_app_answers(app: Any) -> None:
    exchange = Exchange(body_messages(b"a" * 1000, b"b" * 1000, b"c"))
    await BodyLimit(app, limit=1024)(http_scope(), exchange.receive, exchange.send)
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]  # one answer
    assert exchange.status == 413 and exchange.json()["error"]["code"] == "request_too_large"


async def test_a_body_that_stops_arriving_is_408() -> None:
    exchange = Exchange(body_messages(b"a", b"b")[:1], stall=True)
    await BodyLimit(echo, limit=1024, timeout=0.05)(http_scope(), exchange.receive, exchange.send)
    assert exchange.status == 408
    assert exchange.json()["error"]["code"] == "request_timeout"


async def test_body_limit_leaves_other_scopes_alone() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await BodyLimit(app, limit=1024)({"type": "lifespan"}, Exchange([]).receive, Exchange([]).send)
    assert seen == ["lifespan"]


class Observed:
    def __init__(self) -> None:
        self.stats: list[RequestStats] = []

    def observe(self, stats: RequestStats) -> None:
        self.stats.append(stats)


async def test_request_observer_echoes_a_valid_request_id_and_records_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Observed()
    exchange = Exchange(body_messages(b"{}"))
    with caplog.at_level(logging.INFO, logger="codex_wrapper.access"):
        await RequestObserver(echo, lambda: metrics)(  # type: ignore[arg-type,return-value]
            http_scope({"x-request-id": "req-1.a:b"}), exchange.receive, exchange.send
        )
    assert exchange.headers["x-request-id"] == "req-1.a:b"
    (stats,) = metrics.stats
    assert (stats.request_id, stats.status, stats.endpoint) == ("req-1.a:b", 200, "unmatched")
    assert stats.ttft_ms is not None and stats.total_ms is not None and stats.total_ms >= stats.ttft_ms
    line = json.loads(next(r.getMessage() for r in caplog.records if r.name == "codex_wrapper.access"))
    assert line["event"] == "request" and line["request_id"] == "req-1.a:b" and line["status"] == 200


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "semi;colon", "<script>"])
async def test_request_observer_replaces_a_request_id_it_cannot_echo(given: str) -> None:
    exchange = Exchange(body_messages(b"{}"))
    await RequestObserver(echo, lambda: None)(http_scope({"x-request-id": given}), exchange.receive, exchange.send)
    echoed = exchange.headers["x-request-id"]
    assert echoed != given and len(echoed) == 32 and int(echoed, 16) >= 0


async def test_request_observer_does_not_log_health_checks(caplog: pytest.LogCaptureFixture) -> None:
    async def health(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = type("Route", (), {"path": "/health"})()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    metrics = Observed()
    with caplog.at_level(logging.INFO, logger="codex_wrapper.access"):
        exchange = Exchange([])
        await RequestObserver(health, lambda: metrics)(  # type: ignore[arg-type,return-value]
            http_scope(path="/health"), exchange.receive, exchange.send
        )
    assert not [r for r in caplog.records if r.name == "codex_wrapper.access"]
    assert metrics.stats[0].endpoint == "/health"  # still counted


async def test_shutdown_answer_turns_a_cancelled_request_into_a_503() -> None:
    async def cancelled(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError

    exchange = Exchange([])
    await ShutdownAnswer(cancelled)(http_scope(), exchange.receive, exchange.send)
    assert exchange.status == 503 and exchange.headers["retry-after"] == "1"
    assert exchange.json()["error"]["code"] == "shutting_down"


async def test_shutdown_answer_lets_a_started_answer_be_cancelled() -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise asyncio.CancelledError

    exchange = Exchange([])
    with pytest.raises(asyncio.CancelledError):
        await ShutdownAnswer(half)(http_scope(), exchange.receive, exchange.send)
    assert [m["type"] for m in exchange.sent] == ["http.response.start"]
