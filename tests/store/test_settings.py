"""CODEX_STORE_URL picks the backend; the rate limits follow the store's Redis unless told otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError
from app.store import RedisStore, SqliteStore, open_store
from tests.harness import REPO, clean_environment
from tests.store.test_backends import settings_from


def test_the_default_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = settings_from(tmp_path)
    store = open_store(settings)
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "data" / "responses.sqlite3"
    assert settings.rate_limit_storage == "memory://"


@pytest.mark.parametrize("url", ["{tmp}/x.sqlite3", "sqlite://{tmp}/x.sqlite3"])
def test_a_path_or_a_sqlite_url_is_sqlite(tmp_path: Path, url: str) -> None:
    store = open_store(settings_from(tmp_path, CODEX_STORE_URL=url.format(tmp=tmp_path)))
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "x.sqlite3"


@pytest.mark.parametrize("url", ["redis://:pw@db:6379/2", "rediss://user:pw@db.example:6380/0"])
def test_a_redis_url_is_redis_and_shares_the_rate_limits(tmp_path: Path, url: str) -> None:
    settings = settings_from(tmp_path, CODEX_STORE_URL=url)
    store = open_store(settings)
    assert isinstance(store, RedisStore) and "pw" not in store.location
    assert settings.rate_limit_storage == url
    explicit = settings_from(tmp_path, CODEX_STORE_URL=url, RATE_LIMIT_STORAGE_URI="memory://")
    assert explicit.rate_limit_storage == "memory://"


def test_an_unknown_scheme_stops_startup_without_printing_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, CODEX_STORE_URL="mysql://root:hunter2@db/x")
    assert "CODEX_STORE_URL" in str(caught.value) and "redis://" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_bad_port_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CODEX_STORE_URL"):
        open_store(settings_from(tmp_path, CODEX_STORE_URL="redis://db:99999"))


def test_config_shows_the_store_and_the_effective_rate_limit_storage_masked(tmp_path: Path) -> None:
    env = clean_environment(
        CODEX_STORE_URL="redis://:hunter2@db:6379/1", CODEX_WORKDIR=str(tmp_path), CODEX_DATA_DIR=str(tmp_path)
    )
    out = subprocess.run(
        [sys.executable, "-m", "app", "config"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "# CODEX_STORE_URL=redis://:***@db:6379/1" in out  # masked: a comment, not a usable line
    assert "# RATE_LIMIT_STORAGE_URI=redis://:***@db:6379/1" in out  # the default, resolved
    assert "hunter2" not in out
