"""API keys (several, constant-time) and the rate limiter's storage and answers."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.auth import RateLimiter, caller_key, check_api_key
from app.config import ConfigError
from app.errors import ApiError


def request_with(authorization: str | None, client: str = "10.0.0.1") -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "headers": headers, "client": (client, 1234)})


@pytest.mark.parametrize("token", ["sk-one", "sk-two"])
def test_any_configured_key_is_accepted(token: str) -> None:
    check_api_key(request_with(f"Bearer {token}"), ("sk-one", "sk-two"))


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer sk-three", "Basic sk-one", "sk-one", "Bearer sk-one,sk-two"]
)
def test_anything_else_is_401(header: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        check_api_key(request_with(header), ("sk-one", "sk-two"))
    assert caught.value.status == 401 and caught.value.code == "invalid_api_key"


def test_no_keys_means_no_auth() -> None:
    check_api_key(request_with(None), ())


def test_caller_key_hashes_the_key_and_falls_back_to_the_address() -> None:
    assert caller_key(request_with("Bearer sk-one"), auth_on=True).startswith("key:")
    assert "sk-one" not in caller_key(request_with("Bearer sk-one"), auth_on=True)
    assert caller_key(request_with(None, "10.1.2.3"), auth_on=False) == "ip:10.1.2.3"


def test_with_auth_off_made_up_tokens_do_not_buy_a_fresh_quota() -> None:
    first = caller_key(request_with("Bearer random-1", "10.1.2.3"), auth_on=False)
    assert first == caller_key(request_with("Bearer random-2", "10.1.2.3"), auth_on=False) == "ip:10.1.2.3"


async def test_unreachable_storage_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(1, "redis://127.0.0.1:1")
    await limiter.check("a")
    await limiter.check("a")
    assert "rate-limit storage failed" in caplog.text


async def test_limit_is_per_caller_with_retry_after() -> None:
    limiter = RateLimiter(2)
    await limiter.check("a")
    await limiter.check("a")
    with pytest.raises(ApiError) as caught:
        await limiter.check("a")
    assert caught.value.status == 429 and 1 <= int(caught.value.headers["Retry-After"]) <= 60
    await limiter.check("b")


async def test_zero_disables_the_limit() -> None:
    limiter = RateLimiter(0)
    for _ in range(100):
        await limiter.check("a")


def test_unusable_storage_uri_stops_startup() -> None:
    with pytest.raises(ConfigError, match="RATE_LIMIT_STORAGE_URI"):
        RateLimiter(5, "nosuch://host")
