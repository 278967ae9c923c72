"""Timeouts, disconnects, the queue and the child environment: no Codex process outlives its request."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway, codex_processes, wait_for, wait_no_codex

StartGateway = Callable[..., RunningGateway]


def post_in_background(url: str, body: dict, timeout: float, headers: dict | None = None) -> threading.Thread:
    """A request whose answer does not matter (it may time out): it only holds a Codex slot."""

    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url, json=body, headers=headers, timeout=timeout)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def seen(provider: FakeProvider, marker: str) -> Callable[[], bool]:
    return lambda: any(marker in json.dumps(body) for body in provider.requests)


def model_call_abandoned(provider: FakeProvider, marker: str, closed_before: int) -> bool:
    """Whether the turn's model request, if Codex got as far as sending it, was closed (under load a turn can be
    stopped before Codex reaches the model: then there is nothing to close)."""
    return not seen(provider, marker)() or wait_for(lambda: provider.connections_closed > closed_before)


def test_timeout_is_a_504_and_stops_the_turn(start_gateway: StartGateway, provider: FakeProvider, engine: str) -> None:
    gateway = start_gateway(CODEX_TIMEOUT="2", CODEX_ENGINE=engine)
    marker = provider.script(f"hang-timeout-{engine}", Script(hang=True))
    closed_before = provider.connections_closed
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
    assert caught.value.status_code == 504
    assert caught.value.body["code"] == "timeout"
    assert "CODEX_TIMEOUT" in caught.value.body["message"]
    assert wait_no_codex(gateway.codex_home) == []
    assert model_call_abandoned(provider, marker, closed_before)


def test_stream_disconnect_ends_the_turn(start_gateway: StartGateway, provider: FakeProvider, engine: str) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine)
    marker = provider.script(f"slow-stream-{engine}", Script(deltas=["tick "] * 400, delay=0.05, reasoning=["r"]))
    closed_before = provider.connections_closed
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}], "stream": True}
    # app-server streams at once; exec has nothing to send before its answer, so the client gives up waiting
    with (
        contextlib.suppress(httpx.ReadTimeout),
        gateway.http(timeout=3) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        next(response.iter_lines())  # the stream began
    assert seen(provider, marker)()
    assert wait_no_codex(gateway.codex_home) == []
    assert wait_for(lambda: provider.connections_closed > closed_before)


def test_non_stream_disconnect_ends_the_turn(start_gateway: StartGateway, provider: FakeProvider, engine: str) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine)
    marker = provider.script(f"hang-disconnect-{engine}", Script(hang=True))
    closed_before = provider.connections_closed
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=httpx.Timeout(3.0, connect=3.0))
    assert wait_no_codex(gateway.codex_home) == []
    assert model_call_abandoned(provider, marker, closed_before)


def test_queue_full_is_a_429_with_retry_after(start_gateway: StartGateway, provider: FakeProvider, engine: str) -> None:
    gateway = start_gateway(
        CODEX_MAX_PARALLEL_REQUESTS="1", CODEX_MAX_QUEUE="0", CODEX_TIMEOUT="8", CODEX_ENGINE=engine
    )
    marker = provider.script(f"hang-queue-{engine}", Script(hang=True))
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]}
    holder = post_in_background(f"{gateway.base_url}/v1/chat/completions", body, timeout=20)
    assert wait_for(seen(provider, marker))
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "queue_full"
    holder.join(20)
    assert wait_no_codex(gateway.codex_home) == []


def test_queued_request_waits_for_a_free_slot(start_gateway: StartGateway, provider: FakeProvider, engine: str) -> None:
    gateway = start_gateway(CODEX_MAX_PARALLEL_REQUESTS="1", CODEX_MAX_QUEUE="4", CODEX_ENGINE=engine)
    marker = provider.script("slow-queue", Script(deltas=["first"], delay=0.5))
    results: list[str] = []

    def ask(content: str) -> None:
        reply = gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": content}]
        )
        results.append(reply.choices[0].message.content or "")

    threads = [threading.Thread(target=ask, args=(text,)) for text in (marker, "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["first", "pong"]


def test_gateway_secrets_stay_out_of_codex_environment(
    start_gateway: StartGateway, provider: FakeProvider, engine: str
) -> None:
    gateway = start_gateway(PROXY_API_KEY="sk-gateway-secret", CODEX_TIMEOUT="10", CODEX_ENGINE=engine)
    marker = provider.script(f"hang-env-{engine}", Script(hang=True))
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]}
    headers = {"Authorization": "Bearer sk-gateway-secret"}
    worker = post_in_background(f"{gateway.base_url}/v1/chat/completions", body, timeout=3, headers=headers)
    assert wait_for(seen(provider, marker))
    environs = []
    for pid in codex_processes(gateway.codex_home, pool=True):
        with contextlib.suppress(FileNotFoundError):  # a short-lived helper may be gone already
            environs.append(Path(f"/proc/{pid}/environ").read_bytes())
    assert environs
    for environ in environs:
        assert b"sk-gateway-secret" not in environ
        assert b"PROXY_API_KEY" not in environ
    worker.join(10)
    assert wait_no_codex(gateway.codex_home) == []
