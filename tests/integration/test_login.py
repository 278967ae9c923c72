"""Codex without the login its model provider needs: one warning line with the fix at startup, /ready degraded,
every request refused at once (503 codex_not_logged_in) with no Codex turn and no model request; a login made while
the gateway runs is served without a restart; a provider with its own key needs no login."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import tomli_w

from tests.fakes.provider import FakeProvider
from tests.harness import FAKE_MODEL, REPO, RunningGateway, clean_environment, run_gateway, wait_for

StartGateway = Callable[..., RunningGateway]
HELLO = [{"role": "user", "content": "hello"}]
NOT_LOGGED_IN = "Codex is not logged in"


def provider_entry(provider: FakeProvider, **extra: Any) -> dict[str, Any]:
    entry = {
        "name": "fake",
        "base_url": provider.base_url,
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
        **extra,
    }
    return {"model": FAKE_MODEL, "model_provider": "fake", "model_providers": {"fake": entry}}


@pytest.fixture
def start_with(workdir: Path, tmp_path: Path) -> Any:
    """Start a gateway on a CODEX_HOME with this config.toml (and nothing else: no login)."""
    managers: list[Any] = []

    def start(config: dict[str, Any], **settings: str) -> RunningGateway:
        home = tmp_path / f"home{len(managers)}"
        home.mkdir()
        (home / "config.toml").write_text(tomli_w.dumps(config))
        manager = run_gateway(home, workdir, tmp_path / f"gateway{len(managers)}.log", **settings)
        managers.append(manager)
        return manager.__enter__()

    yield start
    for manager in reversed(managers):
        manager.__exit__(None, None, None)


def refused(call: Callable[[], object]) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value


def every_request(client: openai.OpenAI) -> list[Callable[[], object]]:
    """Both endpoints, streamed or not (a stream's error comes before any chunk: `create` raises)."""
    return [
        lambda: client.chat.completions.create(model=FAKE_MODEL, messages=HELLO),
        lambda: client.chat.completions.create(model=FAKE_MODEL, messages=HELLO, stream=True),
        lambda: client.responses.create(model=FAKE_MODEL, input="hello"),
        lambda: client.responses.create(model=FAKE_MODEL, input="hello", stream=True),
    ]


def request_lines(gateway: RunningGateway) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request" and line.get("endpoint", "").startswith("/v1/")]


def assert_not_logged_in(error: openai.APIStatusError, home: Path) -> None:
    assert error.status_code == 503
    body = error.body if isinstance(error.body, dict) else {}
    assert body.get("code") == "codex_not_logged_in", body
    assert NOT_LOGGED_IN in body["message"] and f"Fix: CODEX_HOME={home} npx codex login" in body["message"]


def test_without_a_login_startup_ready_and_every_request_say_so(
    start_with: Any, provider: FakeProvider, engine: str
) -> None:
    """A provider that needs an OpenAI login (and would receive any model request: it is the fake one)."""
    gateway = start_with(provider_entry(provider, requires_openai_auth=True), CODEX_ENGINE=engine, PROXY_API_KEY="sk-k")
    home = gateway.codex_home
    warnings = [line for line in gateway.log().splitlines() if NOT_LOGGED_IN in line]
    assert len(warnings) == 1 and " WARNING " in warnings[0], gateway.log()
    assert f"Fix: CODEX_HOME={home} npx codex login" in warnings[0]  # doctor's fix, word for word
    before = len(provider.requests)
    with gateway.http() as http:
        bare = http.get("/ready")
        shown = http.get("/ready", headers={"Authorization": "Bearer sk-k"})
    assert bare.status_code == 503 and bare.json() == {"status": "degraded"}
    assert shown.status_code == 503 and shown.json()["status"] == "degraded"
    assert NOT_LOGGED_IN in shown.json()["reason"] and shown.json()["login"] == "none"
    for call in every_request(gateway.client("sk-k")):
        assert_not_logged_in(refused(call), home)
    assert len(provider.requests) == before  # no model request
    # no Codex turn: every request was refused before one was started (a started one names its engine)
    assert wait_for(lambda: len(request_lines(gateway)) == 4)
    assert [(line["status"], line.get("engine")) for line in request_lines(gateway)] == [(503, None)] * 4
    if engine == "app-server":  # nor a thread taken from the warm workers
        assert "spare threads used 0, missed 0" in shown.json()["detail"]


def test_the_default_openai_provider_without_a_login(start_with: Any, workdir: Path, tmp_path: Path) -> None:
    """What a newcomer meets: no config.toml provider, no auth.json (and here no network); doctor says the same."""
    gateway = start_with({"model": FAKE_MODEL})  # the provider is the built-in openai one
    [warning] = [line for line in gateway.log().splitlines() if NOT_LOGGED_IN in line]
    message = warning.split("codex_wrapper: ", 1)[1]
    env = clean_environment(
        CODEX_CONFIG_DIR=str(gateway.codex_home), CODEX_WORKDIR=str(workdir), CODEX_DATA_DIR=str(tmp_path / "d")
    )
    doctor = subprocess.run(
        [sys.executable, "-m", "app", "doctor"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert f"FAIL login: {message}\n" in doctor.stdout, doctor.stdout
    with gateway.http() as http:
        ready = http.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "degraded" and NOT_LOGGED_IN in ready.json()["reason"]
    assert_not_logged_in(refused(every_request(gateway.client())[1]), gateway.codex_home)


def test_a_login_made_while_running_is_served_without_a_restart(
    start_with: Any, provider: FakeProvider, engine: str
) -> None:
    gateway = start_with(provider_entry(provider, requires_openai_auth=True), CODEX_ENGINE=engine)
    client = gateway.client()
    assert_not_logged_in(refused(every_request(client)[0]), gateway.codex_home)
    # what `codex login --with-api-key` writes
    (gateway.codex_home / "auth.json").write_text(json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-login"}))
    reply = client.chat.completions.create(model=FAKE_MODEL, messages=HELLO)  # the very next request
    assert reply.choices[0].message.content == "pong"
    assert provider.authorizations[-1] == "Bearer sk-login"  # Codex sent the new login (the workers reloaded it)
    streamed = client.responses.create(model=FAKE_MODEL, input="hello", stream=True)
    assert any(event.type == "response.completed" for event in streamed)
    assert provider.authorizations[-1] == "Bearer sk-login"
    with gateway.http() as http:
        ready = http.get("/ready").json()
    assert ready["status"] == "ready" and ready["login"] == "apiKey account"
    assert "Codex is logged in now (apiKey account)" in gateway.log()


def test_a_provider_with_its_own_key_needs_no_login(start_with: Any, provider: FakeProvider) -> None:
    """Its key in the provider entry (an `env_key` provider stops startup: test_security_env.py)."""
    entry = provider_entry(provider, experimental_bearer_token="sk-provider")
    gateway = start_with(entry)
    assert NOT_LOGGED_IN not in gateway.log()
    with gateway.http() as http:
        ready = http.get("/ready")
    assert ready.status_code == 200 and ready.json()["login"] == "not needed by the model provider"
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=HELLO)
    assert reply.choices[0].message.content == "pong" and provider.authorizations[-1] == "Bearer sk-provider"


def test_the_test_provider_needs_no_login(gateway: RunningGateway) -> None:
    """The harness's provider has no credentials of its own and needs none: no warning, ready."""
    assert NOT_LOGGED_IN not in gateway.log()
    with gateway.http() as http:
        ready = http.get("/ready")
    assert ready.status_code == 200 and ready.json()["login"] == "not needed by the model provider"


def test_codex_api_key_in_the_gateways_environment_is_no_login(start_with: Any, provider: FakeProvider) -> None:
    """No credential reaches Codex's environment (a sandboxed command could read it), so CODEX_API_KEY does not log
    Codex in: the gateway says so, and requests are refused before any model request."""
    config = provider_entry(provider, requires_openai_auth=True)
    gateway = start_with(config, CODEX_ENGINE="exec", CODEX_API_KEY="sk-exec-env")
    assert NOT_LOGGED_IN in gateway.log()
    assert "CODEX_API_KEY set in the gateway's environment is not passed to Codex" in gateway.log()
    before = len(provider.requests)
    with gateway.http() as http:
        body = {"model": FAKE_MODEL, "messages": HELLO}
        reply = http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "codex_not_logged_in"
    assert len(provider.requests) == before


def test_an_isolated_home_finds_a_login_made_later_in_the_users_home(
    start_with: Any, provider: FakeProvider, tmp_path: Path
) -> None:
    """CODEX_ISOLATED_HOME=1 links the user's auth.json even before it exists: `codex login` there is found."""
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "codex_config.toml").write_text(tomli_w.dumps(provider_entry(provider, requires_openai_auth=True)))
    isolated = tmp_path / "isolated"
    gateway = start_with(
        {},
        CODEX_ISOLATED_HOME="1",
        CODEX_ISOLATED_HOME_DIR=str(isolated),
        CODEX_WRAPPER_PROFILE_DIR=str(profile),
    )
    user_home = gateway.codex_home  # CODEX_CONFIG_DIR: the user's home, where `codex login` writes
    warnings = [line for line in gateway.log().splitlines() if NOT_LOGGED_IN in line]
    assert len(warnings) == 1 and f"Fix: CODEX_HOME={user_home} npx codex login" in warnings[0]
    client = gateway.client()
    assert_not_logged_in(refused(every_request(client)[0]), user_home)
    (user_home / "auth.json").write_text(json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-isolated"}))
    reply = client.chat.completions.create(model=FAKE_MODEL, messages=HELLO)
    assert reply.choices[0].message.content == "pong" and provider.authorizations[-1] == "Bearer sk-isolated"
    assert (isolated / "auth.json").resolve() == user_home / "auth.json"
