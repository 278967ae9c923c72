"""Hostile input: generated requests from the app's own OpenAPI schema, and hand-made attacks. Each is refused
with a 4xx in the OpenAI envelope (or answered), never a 5xx, and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.fakes.provider import FakeProvider
from tests.harness import FAKE_MODEL, RunningGateway, run_gateway, write_codex_home
from tests.reliability.conftest import SCALE, record

TRIED: dict[str, int] = {}


@pytest.fixture(scope="module")
def hostile_gateway(provider: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    root = tmp_path_factory.mktemp("hostile")
    home = write_codex_home(root / "home", provider.base_url)
    (root / "work").mkdir()
    limits = {"CODEX_MAX_REQUEST_BYTES": "1048576", "PROXY_API_KEY": "sk-a,sk-b", "CODEX_MODE": "chat"}
    limits["CODEX_API_DOCS"] = "1"  # the test reads the app's own schema, off by default
    with run_gateway(home, root / "work", root / "gateway.log", **limits) as gateway:
        yield gateway


def test_generated_requests_get_no_server_error(hostile_gateway: RunningGateway) -> None:
    """Requests generated for every operation of the app's own OpenAPI schema (schemathesis + hypothesis)."""
    schema = schemathesis.openapi.from_url(f"{hostile_gateway.base_url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=15 * SCALE, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": "Bearer sk-a"}, timeout=60)
            TRIED[case.operation.label] = TRIED.get(case.operation.label, 0) + 1
            case.validate_response(response, checks=[not_a_server_error])

        run()


def post(gateway: RunningGateway, path: str, content: bytes, key: str = "sk-a", **headers: str) -> httpx.Response:
    all_headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers}
    return httpx.post(f"{gateway.base_url}{path}", content=content, headers=all_headers, timeout=60)


def chat(messages: object, **extra: object) -> bytes:
    return json.dumps({"model": FAKE_MODEL, "messages": messages, **extra}).encode()


HOSTILE: dict[str, tuple[str, bytes, int]] = {
    "malformed JSON": ("/v1/chat/completions", b'{"model": "fake-model", "messages": [', 400),
    "JSON that is not an object": ("/v1/chat/completions", b"[1, 2, 3]", 400),
    "invalid UTF-8": ("/v1/chat/completions", b'{"model": "\xff\xfe", "messages": []}', 400),
    "wrong types": ("/v1/chat/completions", json.dumps({"model": 5, "messages": "hi"}).encode(), 400),
    "empty message list": ("/v1/chat/completions", chat([]), 400),
    "enormous message list": ("/v1/chat/completions", chat([{"role": "user", "content": "x"}] * 200_000), 413),
    "body above CODEX_MAX_REQUEST_BYTES": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": "y" * 2_000_000}]),
        413,
    ),
    "unknown role": ("/v1/chat/completions", chat([{"role": "root", "content": "x"}]), 400),
    "deeply nested JSON": ("/v1/chat/completions", b'{"model": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
    "file: image": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/shadow"}}]}]),
        400,
    ),
    "loopback image": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:22/"}}]}]),
        400,
    ),
    "private image": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://10.0.0.1/a.png"}}]}]),
        400,
    ),
    "link-local image": (
        "/v1/chat/completions",
        chat(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/"}}],
                }
            ]
        ),
        400,
    ),
    "cwd escape": ("/v1/chat/completions", chat([{"role": "user", "content": "x"}], x_codex={"cwd": "../../etc"}), 400),
    "absolute cwd outside": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": "x"}], x_codex={"cwd": "/root"}),
        400,
    ),
    "sandbox injection": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": "x"}], x_codex={"sandbox": 'read-only"\nsandbox_mode="danger-full-access'}),
        400,
    ),
    "escaped danger": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": "x"}], x_codex={"sandbox": "danger\u002dfull-access"}),
        400,
    ),
    "effort injection": (
        "/v1/chat/completions",
        chat([{"role": "user", "content": "x"}], reasoning_effort="high\nmodel_provider='evil'"),
        400,
    ),
    "model injection": (
        "/v1/chat/completions",
        json.dumps(
            {"model": 'fake-model" -c sandbox_mode=danger-full-access', "messages": [{"role": "user", "content": "x"}]}
        ).encode(),
        404,
    ),
    "responses: unknown item": (
        "/v1/responses",
        json.dumps({"model": FAKE_MODEL, "input": [{"type": "computer_call"}]}).encode(),
        400,
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hand_made_attacks_are_refused(hostile_gateway: RunningGateway, name: str) -> None:
    path, content, status = HOSTILE[name]
    response = post(hostile_gateway, path, content)
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert httpx.get(f"{hostile_gateway.base_url}/health", timeout=5).status_code == 200
    TRIED[f"hand-made: {name}"] = 1


def test_another_keys_previous_response_is_not_found(hostile_gateway: RunningGateway) -> None:
    created = hostile_gateway.client("sk-a").responses.create(model=FAKE_MODEL, input="mine")
    body = json.dumps({"model": FAKE_MODEL, "input": "x", "previous_response_id": created.id}).encode()
    response = post(hostile_gateway, "/v1/responses", body, key="sk-b")
    assert response.status_code == 404 and response.json()["error"]["code"] == "previous_response_not_found"
    TRIED["hand-made: previous_response_id of another key"] = 1


def test_zz_the_server_still_serves(hostile_gateway: RunningGateway) -> None:
    reply = hostile_gateway.client("sk-a").chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": "still there?"}]
    )
    assert reply.choices[0].message.content == "pong"
    log = Path(hostile_gateway.log_path).read_text()
    assert "Internal error" not in log and "Traceback" not in log
    record(
        "hostile input",
        generated_requests=sum(v for k, v in TRIED.items() if not k.startswith("hand-made")),
        operations=len([k for k in TRIED if not k.startswith("hand-made")]),
        hand_made_cases=len([k for k in TRIED if k.startswith("hand-made")]),
        server_errors=0,
    )
