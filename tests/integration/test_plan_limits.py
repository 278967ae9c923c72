"""The ChatGPT plan's limits (issue 24) through the real Codex: a reply's x-codex-* headers in /limits and /metrics,
a reached limit (the backend's 429 usage_limit_reached) as a 429 with Retry-After on both endpoints, stream or not,
and refusals without a turn while it holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import coredis
import httpx
import openai
import pytest

from app.codex.plan_limits_shared import PREFIX
from tests.fakes.provider import FakeProvider, Script, plan_headers
from tests.harness import FAKE_MODEL, RunningGateway, wait_for
from tests.integration.test_operations import run_cli
from tests.redis_server import RedisServer

KEY = "limits-test-key"


def limits(gateway: RunningGateway) -> dict:
    with gateway.http() as http:
        answer = http.get("/limits", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def metric(gateway: RunningGateway, name: str) -> float | None:
    with gateway.http() as http:
        text = http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_limits_needs_a_key_and_says_when_nothing_is_known(start_gateway: Callable[..., RunningGateway]) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server", PROXY_API_KEY=KEY)
    with gateway.http() as http:
        refused = http.get("/limits")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    body = limits(gateway)
    assert body["known"] is False and body["limit_reached"] is False and "Nothing is known" in body["message"]
    assert "authentication required" in body["message"]  # account/rateLimits/read needs a ChatGPT login
    # the startup line: with a ChatGPT login it names the plan; here it says why the limits are not known yet
    assert wait_for(lambda: "plan limits: not readable at startup (" in gateway.log())


def test_a_replys_headers_show_in_limits_and_metrics(
    start_gateway: Callable[..., RunningGateway], provider: FakeProvider
) -> None:
    now = int(time.time())
    headers = plan_headers((42, 300, now + 3600), (20, 10080, now + 86400), (True, False, "12.5"))
    marker = provider.script("limits-headers", Script(deltas=["ok"], headers=headers))
    gateway = start_gateway(CODEX_ENGINE="app-server", PROXY_API_KEY=KEY)
    reply = gateway.client(KEY).chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}]
    )
    assert reply.choices[0].message.content == "ok"
    assert wait_for(lambda: limits(gateway)["known"])
    body = limits(gateway)
    primary, secondary = body["windows"]["primary"], body["windows"]["secondary"]
    assert (primary["used_percent"], primary["window_minutes"], primary["resets_at_unix"]) == (42, 300, now + 3600)
    assert primary["resets_at"].endswith("Z") and 3500 < primary["resets_in_seconds"] <= 3600
    assert (secondary["used_percent"], secondary["window_minutes"]) == (20, 10080)
    assert body["credits"] == {"has_credits": True, "unlimited": False, "balance": "12.5"}
    assert body["source"] == "account/rateLimits/updated" and body["limit_reached"] is False
    assert not {"email", "account_id", "accountId", "tokens"} & set(body)
    assert metric(gateway, 'codex_wrapper_plan_used_percent{window="primary"}') == 42
    assert metric(gateway, 'codex_wrapper_plan_used_percent{window="secondary"}') == 20
    assert 3500 < (metric(gateway, 'codex_wrapper_plan_reset_seconds{window="primary"}') or 0) <= 3600
    assert metric(gateway, "codex_wrapper_plan_limit_reached") == 0


def _refused(call: Callable[[], object]) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as caught:
        call()
    return caught.value


def test_a_reached_limit_is_a_429_and_holds_without_reaching_the_model(
    start_gateway: Callable[..., RunningGateway], provider: FakeProvider, engine: str
) -> None:
    name = f"limits-reached-{engine}"
    reset = int(time.time()) + 3600
    script = Script(usage_limit_resets_in=3600, headers=plan_headers((100, 300, reset), (60, 10080, reset + 86400)))
    marker = provider.script(name, script)
    gateway = start_gateway(CODEX_ENGINE=engine, PROXY_API_KEY=KEY)
    client = gateway.client(KEY)
    messages = [{"role": "user", "content": marker}]
    calls = [
        lambda: client.chat.completions.create(model=FAKE_MODEL, messages=messages),
        lambda: client.chat.completions.create(model=FAKE_MODEL, messages=messages, stream=True),
        lambda: client.responses.create(model=FAKE_MODEL, input=marker),
        lambda: client.responses.create(model=FAKE_MODEL, input=marker, stream=True),
        lambda: client.chat.completions.create(model=FAKE_MODEL, messages=messages),
    ]
    for call in calls:  # five in a row: the first reaches the model, the rest are refused before a turn
        error = _refused(call)
        body = error.body
        assert body["type"] == "rate_limit_error" and body["code"] == "usage_limit_reached", body
        assert "UTC" in body["message"] and "resets at" in body["message"]
        retry_after = int(error.response.headers["retry-after"])
        assert 3500 <= retry_after <= 3601, retry_after
    assert provider.served.get(name) == 1
    status = limits(gateway)
    assert status["limit_reached"] is True and abs(status["limit_resets_at_unix"] - reset) <= 60
    assert metric(gateway, "codex_wrapper_plan_limit_refusals_total") == 4
    assert metric(gateway, "codex_wrapper_plan_limit_reached") == 1


def test_the_refusal_ends_at_the_reset(start_gateway: Callable[..., RunningGateway], provider: FakeProvider) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server", PROXY_API_KEY=KEY)
    client = gateway.client(KEY)
    reset = int(time.time()) + 8
    script = Script(usage_limit_resets_in=8, headers=plan_headers((100, 300, reset)))
    messages = [{"role": "user", "content": provider.script("limits-short", script)}]
    error = _refused(lambda: client.chat.completions.create(model=FAKE_MODEL, messages=messages))
    assert int(error.response.headers["retry-after"]) <= 9
    _refused(lambda: client.responses.create(model=FAKE_MODEL, input="hello"))  # refused without a turn
    assert wait_for(lambda: not limits(gateway)["limit_reached"], timeout=20)
    answer = client.responses.create(model=FAKE_MODEL, input="hello again")
    assert answer.output_text == "pong"


def test_limits_without_a_key_setting_is_open(start_gateway: Callable[..., RunningGateway]) -> None:
    gateway = start_gateway(CODEX_ENGINE="exec")
    assert httpx.get(f"{gateway.base_url}/limits", timeout=10).json()["known"] is False


@pytest.fixture
def plan_in_redis(redis_server: RedisServer) -> Iterator[str]:
    """The shared Redis without a plan state, before and after: a reached limit left there would refuse the requests
    of every later test on it."""

    async def clear() -> None:
        redis = coredis.Redis.from_url(redis_server.url, decode_responses=True)
        keys = [key async for key in redis.scan_iter(match=f"{PREFIX}:*")]
        if keys:
            await redis.delete(keys)
        redis.connection_pool.disconnect()

    asyncio.run(clear())
    yield redis_server.url
    asyncio.run(clear())


def test_instances_on_one_redis_share_the_plan_and_doctor_shows_it(
    plan_in_redis: str, start_gateway: Callable[..., RunningGateway], provider: FakeProvider, tmp_path: Path
) -> None:  # plan_in_redis first: it clears Redis after the gateways are gone
    now = int(time.time())
    marker = provider.script("limits-shared", Script(deltas=["ok"], headers=plan_headers((77, 300, now + 600))))
    shared = {"CODEX_ENGINE": "app-server", "PROXY_API_KEY": KEY, "CODEX_STORE_URL": plan_in_redis}
    one, two = start_gateway(**shared), start_gateway(**shared)
    one.client(KEY).responses.create(model=FAKE_MODEL, input=marker)
    assert wait_for(lambda: limits(two).get("windows", {}).get("primary", {}).get("used_percent") == 77)
    doctor = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(two.codex_home), CODEX_STORE_URL=plan_in_redis)
    plan = [line for line in doctor.stdout.splitlines() if "plan:" in line]
    assert plan and plan[0].startswith("ok") and "primary (300 min) 77% used" in plan[0], doctor.stdout


def test_a_limit_one_instance_hits_holds_on_every_instance(
    plan_in_redis: str, start_gateway: Callable[..., RunningGateway], provider: FakeProvider
) -> None:
    shared = {"CODEX_ENGINE": "app-server", "PROXY_API_KEY": KEY, "CODEX_STORE_URL": plan_in_redis}
    one, two = start_gateway(**shared), start_gateway(**shared)
    reset = int(time.time()) + 1800
    script = Script(usage_limit_resets_in=1800, headers=plan_headers((100, 300, reset)))
    marker = provider.script("limits-shared-hit", script)
    messages = [{"role": "user", "content": marker}]
    _refused(lambda: one.client(KEY).chat.completions.create(model=FAKE_MODEL, messages=messages))
    assert wait_for(lambda: limits(two)["limit_reached"])
    for gateway in (two, one, two, one):
        error = _refused(lambda g=gateway: g.client(KEY).responses.create(model=FAKE_MODEL, input=marker))
        assert error.body["code"] == "usage_limit_reached"
        assert 1700 <= int(error.response.headers["retry-after"]) <= 1801
    assert provider.served.get("limits-shared-hit") == 1
