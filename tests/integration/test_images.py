"""Images through the gateway to the model: data URLs, fetched http images, hostile URLs (both engines)."""

from __future__ import annotations

import base64
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway

StartGateway = Callable[..., RunningGateway]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def images_sent(provider: FakeProvider, marker: str) -> list[str]:
    body = [b for b in provider.requests if marker in json.dumps(b)][-1]
    return [
        part.get("image_url", "")
        for item in body["input"]
        if isinstance(item.get("content"), list)
        for part in item["content"]
        if part.get("type") == "input_image"
    ]


def leftover_turn_files(gateway: RunningGateway) -> list[Path]:
    """Per-turn folders of the exec engine, in the gateway's private temp folder under CODEX_DATA_DIR."""
    data = gateway.log_path.parent / f"{gateway.log_path.stem}-data"
    return [*data.glob("tmp/run-*/codex-wrapper-turn-*"), *Path(tempfile.gettempdir()).glob("codex-wrapper-turn-*")]


def test_a_data_url_image_reaches_the_model(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("image-chat", Script(deltas=["a red pixel"]))
    before = leftover_turn_files(gateway)
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"what is this? {marker}"},
                    {"type": "image_url", "image_url": {"url": DATA_URL}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "a red pixel"
    sent = images_sent(provider, marker)
    assert len(sent) == 1 and sent[0].startswith("data:image/png;base64,")
    assert base64.b64decode(sent[0].split(",", 1)[1]) == PNG
    deadline = time.monotonic() + 5  # exec tidies up just after its answer: its image files go with the process
    while leftover_turn_files(gateway) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftover_turn_files(gateway) == before


def test_responses_input_image_and_history_images(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("image-resp", Script(deltas=["two pixels"]))
    response = gateway.client().responses.create(
        model=FAKE_MODEL,
        input=[
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "first"}, {"type": "input_image", "image_url": DATA_URL}],
            },
            {"role": "assistant", "content": "seen"},
            {
                "role": "user",
                "content": [{"type": "input_text", "text": marker}, {"type": "input_image", "image_url": DATA_URL}],
            },
        ],
    )
    assert response.output_text == "two pixels"
    assert len(images_sent(provider, marker)) == 2


@pytest.fixture
def image_server() -> Iterator[str]:
    """Serves /pixel.png, /page.html and /redirect (to a private address) on 127.0.0.1."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://10.9.8.7/pixel.png")
                self.end_headers()
                return
            body, kind = (PNG, "image/png") if self.path == "/pixel.png" else (b"<html></html>", "text/html")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_http_image_is_fetched_by_the_gateway(
    start_gateway: StartGateway, provider: FakeProvider, image_server: str, engine: str
) -> None:
    gateway = start_gateway(CODEX_IMAGE_ALLOW_LOOPBACK="1", CODEX_ENGINE=engine)
    marker = provider.script(f"image-http-{engine}", Script(deltas=["fetched"]))
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": marker},
                    {"type": "image_url", "image_url": {"url": f"{image_server}/pixel.png"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "fetched"
    [sent] = images_sent(provider, marker)
    assert base64.b64decode(sent.split(",", 1)[1]) == PNG


@pytest.mark.parametrize(("path", "code"), [("/page.html", "invalid_image_url"), ("/redirect", "invalid_image_url")])
def test_bad_http_images_are_refused(start_gateway: StartGateway, image_server: str, path: str, code: str) -> None:
    gateway = start_gateway(CODEX_IMAGE_ALLOW_LOOPBACK="1")
    content = [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": image_server + path}}]
    with gateway.http() as http:
        response = http.post(
            "/v1/chat/completions", json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": content}]}
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["param"] == "messages[0].content[1].image_url.url"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://127.0.0.1:9/pixel.png",
        "http://[::1]/pixel.png",
        "http://10.0.0.1/pixel.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.0.1/pixel.png",
        "data:text/html;base64,PGI+",
    ],
)
def test_hostile_image_urls_are_refused(gateway: RunningGateway, url: str) -> None:
    content = [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]
    with gateway.http() as http:
        response = http.post(
            "/v1/chat/completions", json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": content}]}
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "messages[0].content[1].image_url.url"
        assert http.get("/health").status_code == 200


def test_images_only_in_user_messages(gateway: RunningGateway) -> None:
    content = [{"type": "image_url", "image_url": {"url": DATA_URL}}]
    body = {"model": FAKE_MODEL, "messages": [{"role": "system", "content": content}, {"role": "user", "content": "x"}]}
    response = httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages[0].content[0]"
