"""The Host header, parsed strictly (app/middleware/hosts.py): one header, a host name or IP, an optional port."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.middleware.hosts import HostAllowList, allowed_hosts, host_name, host_of


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8000", "localhost"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[0:0:0:0:0:0:0:1]:8000", "::1"),
        ("api.example.com.", "api.example.com"),
        ("codex_wrapper:8000", "codex_wrapper"),  # a compose service name
    ],
)
def test_well_formed_hosts_give_their_name(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    "header",
    [
        "[::1]evil.example",
        "127.0.0.1:80@evil.example",
        "user@localhost",
        "localhost:80:80",
        "localhost:",
        "localhost:99999",
        "localhost:0",
        "::1",
        "[::1",
        "[not-an-ip]",
        "[::1]:80x",
        "local host",
        "localhost/path",
        "a..b",
        "-a.example",
        "",
        "é.example",
    ],
)
def test_anything_else_is_refused(header: str) -> None:
    assert host_name(header) is None


def test_the_host_headers_of_a_request() -> None:
    assert host_of({"headers": [(b"host", b"localhost:8000")]}) == ("localhost", None)
    assert host_of({"headers": []}) == (None, None)
    name, problem = host_of({"headers": [(b"host", b"localhost"), (b"host", b"evil.example")]})
    assert name is None and problem is not None and "2 Host headers" in problem


def test_allow_list_entries_are_canonical() -> None:
    hosts = allowed_hosts(Settings(_env_file=None, codex_allowed_hosts="A.example,[0:0::1]"))
    assert hosts == ("a.example", "::1")


def served(hosts: tuple[str, ...] | None) -> TestClient:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(HostAllowList, hosts=hosts)
    return TestClient(app)


@pytest.mark.parametrize("hosts", [("localhost", "127.0.0.1", "::1"), None])
def test_the_middleware_refuses_malformed_and_repeated_hosts(hosts: tuple[str, ...] | None) -> None:
    client = served(hosts)
    assert client.get("/ping", headers={"host": "127.0.0.1:8000"}).status_code == 200
    for bad in ("[::1]evil.example", "127.0.0.1:80@evil.example"):
        response = client.get("/ping", headers={"host": bad})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_host"
