"""The policy proven against the real Codex sandbox: the fake model asks Codex to run commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, RunningGateway, write_codex_home

StartGateway = Callable[..., RunningGateway]


def run_command(
    gateway: RunningGateway, provider: FakeProvider, name: str, command: str, api_key: str = "unused", **request: object
) -> str:
    """Have the fake model call Codex's shell tool with `command`; return the output Codex sent back."""
    call = {"name": "exec_command", "arguments": json.dumps({"cmd": command})}
    marker = provider.script(name, Script(tool_call=call, deltas=["ran it"]))
    reply = gateway.client(api_key).chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], **request
    )
    assert reply.choices[0].message.content == "ran it"
    outputs = [out for body in provider.requests if marker in json.dumps(body) for out in tool_outputs(body)]
    assert outputs, "Codex did not send the command's output back"
    return outputs[-1]


def test_read_only_sandbox_blocks_writes(gateway: RunningGateway, provider: FakeProvider, workdir: Path) -> None:
    target = workdir / "read-only-probe.txt"
    output = run_command(gateway, provider, "touch-ro", f"touch {target}")
    assert not target.exists()
    assert "Read-only file system" in output


def test_workspace_write_allows_writes_in_the_workdir(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, workdir: Path
) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine, CODEX_CLIENT_SANDBOX_MODES="read-only,workspace-write")
    target = workdir / f"workspace-write-probe-{engine}.txt"
    run_command(
        gateway, provider, "touch-ww", f"touch {target}", extra_body={"x_codex": {"sandbox": "workspace-write"}}
    )
    assert target.exists()


def test_cwd_moves_codex_inside_the_workdir(gateway: RunningGateway, provider: FakeProvider, workdir: Path) -> None:
    (workdir / "project").mkdir(exist_ok=True)
    output = run_command(gateway, provider, "pwd", "pwd", extra_body={"x_codex": {"cwd": "project"}})
    assert str(workdir / "project") in output


def test_env_inside_the_sandbox_shows_no_gateway_secret(start_gateway: StartGateway, provider: FakeProvider) -> None:
    gateway = start_gateway(
        PROXY_API_KEY="sk-first,sk-second",
        CODEX_ENV_DENYLIST="SOME_TOKEN",
        CODEX_ENV_ALLOWLIST="KEPT_VAR,SOME_TOKEN",
        SOME_TOKEN="tok-denied",
        KEPT_VAR="kept",
        UNLISTED_VAR="unlisted",
    )
    output = run_command(gateway, provider, "env", "env", api_key="sk-second")
    assert "sk-first" not in output and "sk-second" not in output and "PROXY_API_KEY" not in output
    assert "tok-denied" not in output and "KEPT_VAR=kept" in output and "UNLISTED_VAR" not in output
    assert "CODEX_HOME=" in output  # the command really printed the environment


def test_danger_full_access_is_refused_without_permission(gateway: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"x_codex": {"sandbox": "danger-full-access"}},
        )
    assert caught.value.body["code"] == "sandbox_not_allowed"


@pytest.mark.parametrize(
    "x_codex",
    [
        {"sandbox": 'read-only" -c sandbox_mode="danger-full-access'},
        {"reasoning_effort": "high\nsandbox_mode = 'danger-full-access'"},
        {"cwd": "../../.."},
        {"network_access": True},
        {"model_provider": "openai"},
    ],
)
def test_hostile_x_codex_is_refused_before_codex_starts(
    gateway: RunningGateway, provider: FakeProvider, x_codex: dict
) -> None:
    before = len(provider.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"x_codex": x_codex}
        )
    assert caught.value.body["param"].startswith("x_codex")
    assert len(provider.requests) == before


def test_local_only_with_the_loopback_fake_provider(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_LOCAL_ONLY="1")
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "pong"
    assert "local-only on (provider fake at http://127.0.0.1:" in gateway.log()


def test_local_only_refuses_a_remote_provider(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    remote_home = write_codex_home(tmp_path / "remote-home", "https://api.example.com/v1")
    gateway = start_gateway(CODEX_LOCAL_ONLY="1", CODEX_CONFIG_DIR=str(remote_home))
    before = len(provider.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["code"] == "provider_not_local"
    assert "https://api.example.com/v1" in caught.value.body["message"]
    assert "requests will be refused" in gateway.log()
    assert len(provider.requests) == before


def test_isolated_home_keeps_the_users_config_out(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    user_home = write_codex_home(tmp_path / "user-home", "https://api.example.com/v1")
    (user_home / "auth.json").write_text("{}")
    profile = tmp_path / "profile"
    write_codex_home(profile, provider.base_url)
    (profile / "config.toml").rename(profile / "codex_config.toml")
    gateway = start_gateway(
        CODEX_CONFIG_DIR=str(user_home),
        CODEX_ISOLATED_HOME="1",
        CODEX_ISOLATED_HOME_DIR=str(tmp_path / "isolated"),
        CODEX_WRAPPER_PROFILE_DIR=str(profile),
    )
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "pong"  # the profile's provider, not the user's remote one
    assert (tmp_path / "isolated" / "auth.json").is_symlink()


def test_binding_beyond_loopback_without_a_key_warns(start_gateway: StartGateway) -> None:
    gateway = start_gateway(HOST="0.0.0.0")
    assert "without PROXY_API_KEY" in gateway.log()
    assert "auth off" in gateway.log()
