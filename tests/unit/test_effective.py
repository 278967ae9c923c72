"""`python -m app config`: values in the form the settings read back, defaults resolved, secrets only as comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.effective import env_text, lines


def values(settings: Settings) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines(settings) if not line.startswith("#"))


@pytest.fixture(autouse=True)
def no_gateway_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    monkeypatch.setenv("CODEX_ENV_FILE", "relative.env")
    monkeypatch.chdir(tmp_path)


def test_values_read_back_as_the_settings_accept_them() -> None:
    assert env_text(True) == "true" and env_text(False) == "false" and env_text(None) == ""
    assert env_text(("read-only", "workspace-write")) == "read-only,workspace-write" and env_text(2.5) == "2.5"


def test_defaults_are_resolved_and_paths_absolute(tmp_path: Path) -> None:
    shown = values(Settings(_env_file=None, codex_api_docs=True))
    assert shown["CODEX_CONFIG_DIR"] == str(tmp_path / "codex-home")
    assert shown["CODEX_ENV_FILE"] == str(tmp_path / "relative.env")
    assert shown["CODEX_ALLOWED_HOSTS"] == "localhost,127.0.0.1,::1" and shown["RATE_LIMIT_STORAGE_URI"] == "memory://"
    assert Path(shown["CODEX_PATH"]).is_absolute() and Path(shown["CODEX_ISOLATED_HOME_DIR"]).is_absolute()
    assert shown["CODEX_API_DOCS"] == "true" and shown["CODEX_HIDE_REASONING"] == "false"
    assert set(shown) == {name.upper() for name in Settings.model_fields}
    with_key = values(Settings(_env_file=None, proxy_api_key="sk-a", host="0.0.0.0"))
    assert with_key["CODEX_ALLOWED_HOSTS"] == "*"  # a keyed gateway on a public address answers any Host


def test_secrets_are_only_comments() -> None:
    settings = Settings(_env_file=None, proxy_api_key="sk-one,sk-two", codex_store_url="redis://u:hunter2@cache:6379/0")
    text = "\n".join(lines(settings))
    assert "sk-one" not in text and "hunter2" not in text
    assert "# PROXY_API_KEY=*** (2 keys)" in text and "# CODEX_STORE_URL=redis://u:***@cache:6379/0" in text
    assert "# RATE_LIMIT_STORAGE_URI=redis://u:***@cache:6379/0" in text  # the store's Redis, by default
    assert "PROXY_API_KEY" not in values(settings) and "CODEX_STORE_URL" not in values(settings)
