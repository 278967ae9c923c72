"""Issue 20, findings 6, 7 and 9 (Host): invalid text, a worker that stops answering, image decompression bombs and
a loosely parsed Host header. Real gateway, real Codex, the fake provider; every attack stays on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway, app_server_workers, wait_for

StartGateway = Callable[..., RunningGateway]


# Finding 6: a lone surrogate held a worker slot until CODEX_TIMEOUT (Codex drops the line and never answers).

HELLO = [{"role": "user", "content": "hi"}]
SURROGATE_REQUESTS = [  # (path, body with a lone surrogate written as JSON escapes, the field it is in)
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "\\ud800"}]}, "messages[0].content"),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "\\ud800"}], "stream": True},
        "messages[0].content",
    ),
    ("/v1/chat/completions", {"messages": HELLO, "x_codex": {"cwd": "\\ud800"}}, "x_codex.cwd"),
    (
        "/v1/chat/completions",
        {"messages": HELLO, "tools": [{"type": "function", "function": {"name": "f\\udfff", "parameters": {}}}]},
        "tools[0].function.name",
    ),
    ("/v1/responses", {"input": "\\ud800"}, "input"),
    ("/v1/responses", {"input": "hi", "instructions": "be \\udc00 brief", "stream": True}, "instructions"),
    ("/v1/responses", {"input": "hi", "metadata": {"k": "\\ud83d"}}, "metadata.k"),
]


def raw_json(body: dict) -> bytes:
    """The body as JSON with its "\\\\uXXXX" escapes kept as escapes (json.dumps would double the backslash)."""
    return json.dumps({"model": FAKE_MODEL, **body}).replace("\\\\u", "\\u").encode()


def test_a_lone_surrogate_is_a_400_at_once_and_holds_no_slot(
    start_gateway: StartGateway, engine: str, provider: FakeProvider
) -> None:
    gateway = start_gateway(
        CODEX_ENGINE=engine,
        CODEX_APP_SERVER_WORKERS="1",
        CODEX_MAX_PARALLEL_REQUESTS="1",
        CODEX_MAX_QUEUE="0",
        CODEX_TIMEOUT="60",
    )
    before = len(provider.requests)
    answers: list[tuple[int, dict, str]] = []

    def attack(path: str, body: dict, param: str) -> None:
        raw = raw_json(body)
        response = httpx.post(
            gateway.base_url + path, content=raw, headers={"content-type": "application/json"}, timeout=10
        )
        answers.append((response.status_code, response.json(), param))

    threads = [threading.Thread(target=attack, args=case) for case in SURROGATE_REQUESTS * 2]
    for thread in threads:
        thread.start()
    with gateway.http(timeout=5) as http:  # the gateway answers others while the attack is in flight
        while any(thread.is_alive() for thread in threads):
            assert http.get("/health").status_code == 200
    for thread in threads:
        thread.join()
    assert len(answers) == len(threads)
    for status, body, param in answers:
        assert status == 400, body
        assert body["error"]["code"] == "invalid_text" and body["error"]["param"] == param
        assert body["error"]["type"] == "invalid_request_error"
    assert len(provider.requests) == before  # nothing reached the model
    # one slot, no queue: a slot still held by any of them would make this a 429
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=HELLO)
    assert reply.choices[0].message.content == "pong"


# Finding 6: every JSON-RPC request has a time limit, and a worker that stops answering is replaced.


def test_a_worker_that_stops_answering_is_replaced(start_gateway: StartGateway) -> None:
    gateway = start_gateway(
        CODEX_ENGINE="app-server", CODEX_APP_SERVER_WORKERS="1", CODEX_RPC_TIMEOUT_SECONDS="2", CODEX_TIMEOUT="60"
    )
    [worker] = app_server_workers(gateway.codex_home)
    os.kill(worker, signal.SIGSTOP)  # alive, holding its pipes, answering nothing
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            gateway.client(timeout=30).chat.completions.create(model=FAKE_MODEL, messages=HELLO)
        assert caught.value.status_code == 504 and "CODEX_RPC_TIMEOUT_SECONDS" in caught.value.message
        assert wait_for(lambda: app_server_workers(gateway.codex_home) not in ([], [worker]), 30)
        reply = gateway.client(timeout=30).chat.completions.create(model=FAKE_MODEL, messages=HELLO)
        assert reply.choices[0].message.content == "pong"
        assert worker not in app_server_workers(gateway.codex_home)
        assert "stopped answering" in gateway.log()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGCONT)


# Finding 7: image decompression bombs.


def bilevel_png(width: int, height: int) -> bytes:
    """A real PNG of any size that stays small: black 1-bit rows compress to almost nothing (20000x20000: ~50 KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the peak: a decode that came and went still shows
            return int(line.split()[1])
    return 0


def test_a_decompression_bomb_is_refused_before_codex(
    start_gateway: StartGateway, engine: str, provider: FakeProvider
) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine, CODEX_APP_SERVER_WORKERS="1", CODEX_TIMEOUT="60")
    workers = app_server_workers(gateway.codex_home)
    peak = {pid: rss_kb(pid) for pid in workers}
    bomb = "data:image/png;base64," + base64.b64encode(bilevel_png(20000, 20000)).decode()
    marker = provider.script(f"bomb-{engine}", Script(deltas=["seen"]))
    before = len(provider.requests)
    chat_image = {"type": "image_url", "image_url": {"url": bomb}}
    responses_image = {"type": "input_image", "image_url": bomb}
    file_image = {"type": "input_file", "filename": "bomb.png", "file_data": bomb}
    client = gateway.client(timeout=30)
    attempts = [
        (
            lambda: client.chat.completions.create(
                model=FAKE_MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": marker}, chat_image]}]
            ),
            "messages[0].content[1].image_url.url",
        ),
        (
            lambda: client.responses.create(
                model=FAKE_MODEL,
                input=[{"role": "user", "content": [{"type": "input_text", "text": marker}, responses_image]}],
            ),
            "input[0].content[1].image_url",
        ),
        (
            lambda: client.responses.create(
                model=FAKE_MODEL,
                input=[{"role": "user", "content": [{"type": "input_text", "text": marker}, file_image]}],
            ),
            "input[0].content[1].file_data",
        ),
    ]
    for send, param in attempts:
        with pytest.raises(openai.BadRequestError) as caught:
            send()
        assert caught.value.body["code"] == "image_too_many_pixels" and caught.value.body["param"] == param
        assert "20000x20000" in caught.value.message and "CODEX_MAX_IMAGE_PIXELS" in caught.value.message
    assert len(provider.requests) == before
    for pid in workers:  # the shared worker never saw the image: no gigabyte decode (it was ~140 MB -> ~1 GB)
        assert rss_kb(pid) < peak[pid] + 64 * 1024
    reply = client.chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
    assert reply.choices[0].message.content == "seen"


def test_too_many_pixels_per_request_and_images_that_are_not_images_are_refused(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_APP_SERVER_WORKERS="1", CODEX_MAX_IMAGE_PIXELS_PER_REQUEST=str(3 * 1000 * 1000))
    url = "data:image/png;base64," + base64.b64encode(bilevel_png(1000, 1000)).decode()
    image = {"type": "image_url", "image_url": {"url": url}}
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, *[image] * 4]}]
        )
    assert caught.value.body["code"] == "images_too_many_pixels"
    assert "CODEX_MAX_IMAGE_PIXELS_PER_REQUEST" in caught.value.message
    fake = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().responses.create(
            model=FAKE_MODEL, input=[{"role": "user", "content": [{"type": "input_image", "image_url": fake}]}]
        )
    assert caught.value.body["code"] == "invalid_image"
    assert caught.value.body["param"] == "input[0].content[0].image_url"


# Finding 9: the Host header, parsed strictly.


def exchange(gateway: RunningGateway, head: bytes) -> bytes:
    port = int(gateway.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n")
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return received


BAD_HOSTS = [
    [b"[::1]evil.example"],
    [b"127.0.0.1:80@evil.example"],
    [b"127.0.0.1", b"evil.example"],  # two Host headers: the last one won
    [b"evil.example", b"127.0.0.1"],
    [b"127.0.0.1 evil.example"],
    [],  # none, under the loopback allow-list
]


def test_a_host_header_that_is_not_exactly_one_allowed_host_is_refused(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_APP_SERVER_WORKERS="1")
    for hosts in BAD_HOSTS:
        lines = b"".join(b"Host: " + host + b"\r\n" for host in hosts)
        answer = exchange(gateway, b"GET /v1/models HTTP/1.1\r\n" + lines)
        assert answer.startswith(b"HTTP/1.1 400"), (hosts, answer[:200])
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "invalid_host"
    port = gateway.base_url.rsplit(":", 1)[1].encode()
    for good in (b"127.0.0.1:" + port, b"localhost", b"[::1]:" + port):
        assert exchange(gateway, b"GET /v1/models HTTP/1.1\r\nHost: " + good + b"\r\n").startswith(b"HTTP/1.1 200")
