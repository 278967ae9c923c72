"""Invalid text in a JSON body (app/api/text_guard.py): a 400 naming the field, before the endpoint sees the body."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from app.api.errors import install_error_handlers
from app.api.text_guard import TextCheckedRoute, bad_text_at


def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter(route_class=TextCheckedRoute)

    @router.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"keys": sorted(body)}

    app.include_router(router)
    return TestClient(app)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"a": "ok"}, None),
        ({"a": "😀 émoji, 日本語"}, None),
        ({"a": "\ud800"}, "a"),
        ({"messages": [{"content": "x"}, {"content": ["ok", "bad \udfff"]}]}, "messages[1].content[1]"),
        ({"metadata": {"\ud83d": "v"}}, "metadata.\\ud83d"),
        ({"x_codex": {"cwd": "/tmp/\udc80"}}, "x_codex.cwd"),
        ("\ud800", ""),
    ],
)
def test_the_first_lone_surrogate_is_found_with_its_path(body: Any, where: str | None) -> None:
    assert bad_text_at(body) == where


def test_a_deep_body_is_walked_without_recursion() -> None:
    deep: Any = "\ud800"
    for _ in range(100_000):
        deep = [deep]
    assert bad_text_at(deep) == "[0]" * 100_000


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
        (b'{"model": "m", "x_codex": {"cwd": "\\udfff"}}', "x_codex.cwd"),
        (b'{"model": "m", "tools": [{"name": "a\\ud800b"}]}', "tools[0].name"),
        (b'{"model": "m", "metadata": {"k": "\xed\xa0\x80"}}', "metadata.k"),  # the raw bytes of a surrogate
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(raw: bytes, param: str) -> None:
    response = client().post("/echo", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_text" and error["param"] == param and param in error["message"]
    assert error["type"] == "invalid_request_error"


def test_bytes_that_are_not_utf8_are_a_400() -> None:
    response = client().post("/echo", content=b'{"a": "\xff"}', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_text"


def test_valid_text_and_surrogate_pairs_pass() -> None:
    raw = '{"a": "\\ud83d\\ude00", "b": "\\\\ud800 is how it is written", "c": "日本"}'.encode()
    response = client().post("/echo", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json() == {"keys": ["a", "b", "c"]}


def test_a_body_that_is_not_json_keeps_its_own_error() -> None:
    response = client().post("/echo", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
