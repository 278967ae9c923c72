"""Settings: defaults, the .env file, CODEX_ENV_FILE, and one clear line for an invalid value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings
from tests.harness import REPO, clean_environment


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("CODEX_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("CODEX_WORKDIR", str(tmp_path / "work"))
    return tmp_path


def test_defaults_are_safe() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.codex_sandbox_mode == "read-only"
    assert settings.proxy_api_key is None
    assert not settings.codex_allow_danger_full_access
    assert settings.codex_timeout == 120 and settings.codex_max_parallel_requests == 2
    assert settings.codex_reasoning_effort == "medium"


def test_env_file_is_read_and_the_os_environment_wins(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    env_file = clean_env / "custom.env"
    env_file.write_text("CODEX_TIMEOUT=33\nPORT=9001\nPROXY_API_KEY=from-file\n")
    monkeypatch.setenv("CODEX_ENV_FILE", str(env_file))
    monkeypatch.setenv("PORT", "9002")
    settings = load_settings()
    assert settings.codex_timeout == 33
    assert settings.port == 9002
    assert settings.proxy_api_key == "from-file"


def test_workdir_is_created(clean_env: Path) -> None:
    assert load_settings().codex_workdir.is_dir()


def test_relative_paths_become_absolute(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    monkeypatch.chdir(clean_env)
    monkeypatch.setenv("CODEX_CONFIG_DIR", "home")
    monkeypatch.setenv("CODEX_PATH", "./bin/codex")
    settings = load_settings()
    assert settings.codex_config_dir == clean_env / "home"
    assert settings.codex_path == str(clean_env / "bin" / "codex")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CODEX_SANDBOX_MODE", "yolo", "read-only, workspace-write, danger-full-access"),
        ("CODEX_REASONING_EFFORT", "extreme", "low, medium, high"),
        ("CODEX_TIMEOUT", "-5", "greater than 0"),
        ("CODEX_MAX_PARALLEL_REQUESTS", "0", "greater than or equal to 1"),
        ("PORT", "http", "integer"),
    ],
)
def test_invalid_values_name_variable_value_and_allowed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message and repr(value) in message and expected in message
    assert "\n" not in message


def test_danger_default_needs_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_SANDBOX_MODE", "danger-full-access")
    with pytest.raises(ConfigError, match="CODEX_ALLOW_DANGER_FULL_ACCESS"):
        load_settings()
    monkeypatch.setenv("CODEX_ALLOW_DANGER_FULL_ACCESS", "1")
    assert load_settings().codex_sandbox_mode == "danger-full-access"


@pytest.mark.parametrize("value", [",", " , ,"])
def test_a_proxy_api_key_without_any_key_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PROXY_API_KEY", value)
    with pytest.raises(ConfigError, match="PROXY_API_KEY"):
        load_settings()


def test_several_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXY_API_KEY", "sk-a, sk-b,,")
    assert load_settings().api_keys == ("sk-a", "sk-b")


def test_unwritable_workdir_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_WORKDIR", "/proc/no-such-dir")
    with pytest.raises(ConfigError, match="CODEX_WORKDIR"):
        load_settings()


def test_deprecated_codex_model_only_warns(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CODEX_MODEL", "gpt-4")
    load_settings()
    assert "CODEX_MODEL is deprecated" in caplog.text


def test_startup_stops_with_one_line(tmp_path: Path) -> None:
    env = clean_environment(CODEX_SANDBOX_MODE="yolo", CODEX_WORKDIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "app"], cwd=REPO, env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert lines == [
        "codex-wrapper: invalid setting CODEX_SANDBOX_MODE='yolo': allowed is one of "
        "read-only, workspace-write, danger-full-access"
    ]


def test_a_broken_config_toml_stops_startup_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("model = \n")
    env = clean_environment(CODEX_CONFIG_DIR=str(home), CODEX_WORKDIR=str(tmp_path / "w"))
    env["CODEX_WRAPPER_PROFILE_DIR"] = str(tmp_path / "no-profile")
    done = subprocess.run([sys.executable, "-m", "app"], cwd=REPO, env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    [line] = done.stderr.decode().strip().splitlines()
    assert line.startswith("codex-wrapper: cannot read ") and "config.toml" in line
