"""What a sealed worker may hold: the login handed over in memory, a configuration without credentials."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from app.codex.login_handover import API_KEY, CHATGPT, UNREADABLE, read_handover
from app.policy.worker_seal import WorkerSeal, secret_keys, unsealable, view_config


@pytest.mark.parametrize(
    ("auth", "kind"),
    [
        ({"OPENAI_API_KEY": "sk-a"}, API_KEY),
        ({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-a", "tokens": {"access_token": "t"}}, API_KEY),
        ({"OPENAI_API_KEY": None, "tokens": {"access_token": "t", "refresh_token": "r"}}, CHATGPT),
        ({"OPENAI_API_KEY": "sk-a", "tokens": {"access_token": "t"}}, CHATGPT),  # Codex prefers the tokens
        ({"OPENAI_API_KEY": None, "tokens": None}, None),
        ([1], UNREADABLE),
    ],
)
def test_the_login_in_auth_json(tmp_path: Path, auth: object, kind: str | None) -> None:
    (tmp_path / "auth.json").write_text(json.dumps(auth))
    login = read_handover(tmp_path)
    assert login.kind == kind
    assert login.sealable == (kind in (None, API_KEY))
    assert (login.params == {"type": "apiKey", "apiKey": "sk-a"}) == (kind == API_KEY)


def test_no_auth_json_is_no_login(tmp_path: Path) -> None:
    assert read_handover(tmp_path).kind is None and read_handover(tmp_path).sealable
    (tmp_path / "auth.json").write_text("{not json")
    assert read_handover(tmp_path).kind == UNREADABLE


def test_what_may_hold_a_credential_in_config_toml() -> None:
    config = {
        "model_reasoning_effort": "high",
        "tool_output_token_limit": 10,
        "model_providers": {
            "a": {"base_url": "x", "requires_openai_auth": True, "experimental_bearer_token": "sk"},
            "b": {"http_headers": {"X": "y"}, "env_http_headers": {"X": "Y"}, "stream_max_retries": 0},
        },
        "mcp_servers": {"m": {"command": "x", "env": {"K": "v"}, "bearer_token_env_var": "T"}},
        "list": [{"client_secret": "s"}],
    }
    assert secret_keys(config) == [
        "model_providers.a.experimental_bearer_token",
        "model_providers.b.http_headers",
        "model_providers.b.env_http_headers",
        "mcp_servers.m.env",
        "mcp_servers.m.bearer_token_env_var",
        "list.0.client_secret",
    ]


def test_the_views_config_keeps_the_login_in_memory(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('model = "m"\n[model_providers.f]\nbase_url = "u"\n')
    view = tomllib.loads(view_config(tmp_path))
    expected = {"model": "m", "model_providers": {"f": {"base_url": "u"}}, "cli_auth_credentials_store": "ephemeral"}
    assert view == expected
    (tmp_path / "config.toml").write_text('cli_auth_credentials_store = "file"\n')
    assert tomllib.loads(view_config(tmp_path))["cli_auth_credentials_store"] == "ephemeral"


def test_why_a_home_cannot_be_sealed(tmp_path: Path) -> None:
    assert unsealable(tmp_path) == ""
    (tmp_path / "auth.json").write_text(json.dumps({"tokens": {"access_token": "t"}}))
    assert "(chatgpt)" in unsealable(tmp_path)
    (tmp_path / "config.toml").write_text('[model_providers.f]\nexperimental_bearer_token = "sk"\n')
    assert "model_providers.f.experimental_bearer_token" in unsealable(tmp_path)
    (tmp_path / "config.toml").write_text("not = [toml")
    assert "config.toml cannot be read" in unsealable(tmp_path)


def test_a_config_edited_into_bad_toml_fails_that_worker_start_only(tmp_path: Path) -> None:
    """OSError is what the pool's supervisor logs and retries with backoff."""
    seal = WorkerSeal(Path("/usr/bin/bwrap"), tmp_path, tmp_path / "state", None, (), tmp_path / "view.toml")  # type: ignore[arg-type]
    (tmp_path / "config.toml").write_text('model = "m"\n')
    seal.write_config()
    assert tomllib.loads((tmp_path / "view.toml").read_text())["cli_auth_credentials_store"] == "ephemeral"
    (tmp_path / "config.toml").write_text("not = [toml")
    with pytest.raises(OSError, match=r"config\.toml"):
        seal.write_config()
