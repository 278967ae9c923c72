"""Profile overrides into CODEX_HOME: names, legacy names, backups, atomic writes, the isolated home."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.codex.home import prepare_codex_home
from app.config import ConfigError, Settings


def make_settings(tmp_path: Path, **extra: object) -> Settings:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return Settings(
        _env_file=None,
        codex_workdir=tmp_path / "work",
        codex_config_dir=tmp_path / "home",
        codex_wrapper_profile_dir=profile,
        **extra,
    )


def test_overrides_are_copied_under_codex_names(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.codex_wrapper_profile_dir / "codex_agents.md").write_text("be brief")
    (settings.codex_wrapper_profile_dir / "codex_config.toml").write_text('model = "m"\n')
    home = prepare_codex_home(settings)
    assert home == tmp_path / "home"
    assert (home / "AGENTS.md").read_text() == "be brief"
    assert (home / "config.toml").read_text() == 'model = "m"\n'
    assert not list(home.glob("*.bak-*"))


def test_a_replaced_file_is_kept_as_a_backup_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("mine = 1\n")
    (settings.codex_wrapper_profile_dir / "codex_config.toml").write_text("override = 1\n")
    prepare_codex_home(settings)
    prepare_codex_home(settings)  # same content again: no second backup
    backups = list(home.glob("config.toml.bak-*"))
    assert [b.read_text() for b in backups] == ["mine = 1\n"]
    assert (home / "config.toml").read_text() == "override = 1\n"
    assert not list(home.glob(".config.toml.*"))  # no temporary file left behind


def test_legacy_names_are_honoured_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path)
    (settings.codex_wrapper_profile_dir / "agent.md").write_text("legacy agents")
    (settings.codex_wrapper_profile_dir / "config.toml").write_text("legacy = 1\n")
    with caplog.at_level(logging.WARNING):
        home = prepare_codex_home(settings)
    assert (home / "AGENTS.md").read_text() == "legacy agents"
    assert (home / "config.toml").read_text() == "legacy = 1\n"
    assert "agent.md" in caplog.text and "codex_agents.md" in caplog.text


def test_new_names_win_over_legacy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.codex_wrapper_profile_dir / "agent.md").write_text("old")
    (settings.codex_wrapper_profile_dir / "codex_agents.md").write_text("new")
    assert (prepare_codex_home(settings) / "AGENTS.md").read_text() == "new"


def test_a_failure_stops_startup_naming_the_path(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (settings.codex_wrapper_profile_dir / "codex_agents.md").write_text("x")
    (tmp_path / "home").write_text("a file where a directory should be")
    with pytest.raises(ConfigError) as caught:
        prepare_codex_home(settings)
    assert str(tmp_path / "home") in str(caught.value)


def test_isolated_home_cannot_be_the_users_home(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, codex_isolated_home=True, codex_isolated_home_dir=tmp_path / "home")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "auth.json").write_text("{}")
    with pytest.raises(ConfigError, match="CODEX_ISOLATED_HOME_DIR"):
        prepare_codex_home(settings)
    assert (tmp_path / "home" / "auth.json").read_text() == "{}"


def test_isolated_home_holds_only_the_login_link_and_overrides(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, codex_isolated_home=True, codex_isolated_home_dir=tmp_path / "iso")
    user = tmp_path / "home"
    user.mkdir()
    (user / "auth.json").write_text("{}")
    (user / "config.toml").write_text('[mcp_servers.slow]\ncommand = "sleep"\n')
    (settings.codex_wrapper_profile_dir / "codex_config.toml").write_text('model = "m"\n')
    home = prepare_codex_home(settings)
    assert home == tmp_path / "iso"
    assert sorted(p.name for p in home.iterdir()) == ["auth.json", "config.toml"]
    assert (home / "auth.json").resolve() == user / "auth.json"
    assert (home / "config.toml").read_text() == 'model = "m"\n'
    assert (user / "config.toml").read_text().startswith("[mcp_servers.slow]")  # the user's home is untouched
    (settings.codex_wrapper_profile_dir / "codex_config.toml").unlink()
    assert not (prepare_codex_home(settings) / "config.toml").exists()  # a removed override leaves no stale copy
