"""Issue 13, findings 6, 7 and 9: image amplification, local-only fooled by URL parsing, the open HTTP surface.
Every attack stays on 127.0.0.1 and is bounded in count and time."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway, wait_for

StartGateway = Callable[..., RunningGateway]
BIG = 19 * 1024 * 1024
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class ImageServer:
    """Serves /slow/<n>.png (a small body after 0.3 s) and /big/<n>.png (19 MB), counting requests at once."""

    def __init__(self) -> None:
        self.hits = 0
        self.active = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                with server.lock:
                    server.hits += 1
                    server.active += 1
                    server.most_at_once = max(server.most_at_once, server.active)
                try:
                    big = self.path.startswith("/big/")
                    if not big:
                        time.sleep(0.3)
                    # a readable 1x1 PNG padded to 19 MB: only the request's byte budget can refuse it
                    body = PNG + b"\0" * (BIG - len(PNG)) if big else PNG
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server.lock:
                        server.active -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    yield server
    server.httpd.shutdown()


def image_message(text: str, urls: list[str]) -> list[dict]:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]


# Finding 6: image amplification.


def test_a_small_request_cannot_make_the_gateway_fetch_without_end(
    start_gateway: StartGateway, images: ImageServer
) -> None:
    gateway = start_gateway(CODEX_IMAGE_ALLOW_LOOPBACK="1", CODEX_APP_SERVER_WORKERS="1")
    urls = [f"{images.url}/slow/{n}.png" for n in range(120)]
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=image_message("x", urls))
    assert caught.value.body["code"] == "too_many_images" and "CODEX_MAX_IMAGES_PER_REQUEST" in caught.value.message
    assert images.hits == 0  # refused before a single fetch


def test_image_fetches_run_a_few_at_a_time(
    start_gateway: StartGateway, provider: FakeProvider, images: ImageServer
) -> None:
    gateway = start_gateway(CODEX_IMAGE_ALLOW_LOOPBACK="1", CODEX_APP_SERVER_WORKERS="1")
    marker = provider.script("many-images", Script(deltas=["seen"]))
    urls = [f"{images.url}/slow/{n}.png" for n in range(16)]
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=image_message(marker, urls))
    assert reply.choices[0].message.content == "seen"
    assert images.hits == 16 and images.most_at_once <= 4


def test_a_huge_image_request_leaves_another_users_turn_alone(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, images: ImageServer
) -> None:
    gateway = start_gateway(
        CODEX_ENGINE=engine, CODEX_IMAGE_ALLOW_LOOPBACK="1", CODEX_APP_SERVER_WORKERS="1", CODEX_TIMEOUT="60"
    )
    slow = provider.script(f"running-{engine}", Script(deltas=[f"part{n} " for n in range(12)], delay=0.25))
    answer: dict[str, object] = {}

    def running_turn() -> None:
        try:
            reply = gateway.client().chat.completions.create(
                model=FAKE_MODEL, messages=[{"role": "user", "content": slow}]
            )
            answer["text"] = reply.choices[0].message.content
        except openai.APIError as exc:
            answer["error"] = exc

    other = threading.Thread(target=running_turn)
    other.start()
    assert wait_for(lambda: any(slow in json.dumps(body) for body in provider.requests), 30)  # it is running
    big = [f"{images.url}/big/{n}.png" for n in range(4)]  # 440 bytes asking for 76 MB
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=image_message("x", big))
    assert caught.value.body["code"] == "images_too_large"
    other.join(60)
    assert answer.get("text") == "".join(f"part{n} " for n in range(12)), answer


# Finding 7: CODEX_LOCAL_ONLY read the provider URL as Python does, Codex as WHATWG does.


def test_local_only_reads_the_provider_url_as_codex_does(
    start_gateway: StartGateway, engine: str, provider: FakeProvider
) -> None:
    port = provider.base_url.split(":")[2].split("/")[0]
    tricky = f"http://0.0.0.0:{port}\\@127.0.0.1:{port}/v1"  # urlsplit: 127.0.0.1; WHATWG (Codex): 0.0.0.0
    entry = {"name": "fake", "base_url": tricky, "wire_api": "responses", "request_max_retries": 0}
    gateway = start_gateway(
        {"model_providers": {"fake": {**entry, "stream_max_retries": 0}}},
        CODEX_ENGINE=engine,
        CODEX_LOCAL_ONLY="1",
        CODEX_APP_SERVER_WORKERS="1",
    )
    before = len(provider.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["code"] == "provider_not_local"
    assert len(provider.requests) == before  # nothing went to the host Codex would have used
    assert "requests will be refused" in gateway.log()


# Finding 9: the HTTP surface.


def test_api_docs_are_off_and_metrics_and_details_need_a_key(start_gateway: StartGateway) -> None:
    gateway = start_gateway(PROXY_API_KEY="sk-ops", CODEX_APP_SERVER_WORKERS="1")
    with gateway.http() as http:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert http.get(path).status_code == 404, path
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer sk-ops"}).status_code == 200
        anonymous = http.get("/ready").json()
        assert anonymous == {"status": "ready"}
        detailed = http.get("/ready", headers={"Authorization": "Bearer sk-ops"}).json()
        assert detailed["status"] == "ready" and detailed["codex_version"] and detailed["engine"]
        assert http.get("/health").status_code == 200


def test_api_docs_when_the_operator_turns_them_on(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_API_DOCS="1", CODEX_METRICS_REQUIRE_KEY="0", PROXY_API_KEY="sk-ops")
    with gateway.http() as http:
        assert http.get("/openapi.json").status_code == 200 and http.get("/metrics").status_code == 200


def test_a_foreign_host_header_is_refused_on_loopback_without_keys(gateway: RunningGateway) -> None:
    with gateway.http() as http:
        refused = http.get("/v1/models", headers={"Host": "rebound.example:8000"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_host"
        assert http.get("/v1/models", headers={"Host": "localhost:1234"}).status_code == 200
        assert http.get("/v1/models").status_code == 200  # 127.0.0.1:<port>


def raw_exchange(gateway: RunningGateway, head: bytes, body: bytes = b"", wait: float = 15) -> bytes:
    """Send `head` and `body` on a raw connection; whatever the server answers within `wait` seconds."""
    port = int(gateway.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server closed once it had seen enough
            sock.sendall(head + body)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def test_a_huge_request_header_is_refused(gateway: RunningGateway) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (4 * 1024 * 1024) + b"\r\n\r\n"
    answer = raw_exchange(gateway, head)
    assert answer.startswith(b"HTTP/1.1 431") and b"CODEX_MAX_HEADER_BYTES" in answer
    with gateway.http() as http:
        assert http.get("/health").status_code == 200


def test_a_slow_body_is_cut_off(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_REQUEST_READ_TIMEOUT_SECONDS="2", CODEX_APP_SERVER_WORKERS="1")
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    started = time.monotonic()
    answer = raw_exchange(gateway, head + b"Content-Length: 1000\r\n\r\n", b'{"model": ', wait=20)
    assert answer.startswith(b"HTTP/1.1 408") and b"CODEX_REQUEST_READ_TIMEOUT_SECONDS" in answer
    assert time.monotonic() - started < 15


def test_slow_headers_are_cut_off(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_REQUEST_READ_TIMEOUT_SECONDS="2", CODEX_APP_SERVER_WORKERS="1")
    answer = raw_exchange(gateway, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", wait=20)
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_chunked_body_over_the_limit_is_413(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_MAX_REQUEST_BYTES="4096", CODEX_APP_SERVER_WORKERS="1")

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "fake-model", "messages": [{"role": "user", "content": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}]}'

    response = httpx.post(f"{gateway.base_url}/v1/chat/completions", content=chunks(), timeout=30)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
