"""Codex's environment: an allow-list that never carries a credential (app/codex/env.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.codex.env import check_credentials, child_environment
from app.config import ConfigError, Settings

CONFIG = {"model_providers": {"mine": {"base_url": "http://127.0.0.1:1/v1", "env_key": "MINE_KEY"}}}


def test_only_allowed_names_reach_codex(tmp_path: Path) -> None:
    source = {
        "PATH": "/bin",
        "LC_ALL": "C",
        "https_proxy": "http://proxy:3128",
        "HTTP_PROXY": "http://user:pw@proxy:3128",
        "MY_TOOL": "x",
        "RANDOM_SECRET": "s",
        "OPENAI_API_KEY": "sk-1",
        "CODEX_API_KEY": "sk-2",
        "MINE_KEY": "sk-3",
        "PROXY_API_KEY": "sk-4",
    }
    settings = Settings(_env_file=None, codex_env_allowlist="MY_TOOL,MINE_KEY,OPENAI_API_KEY,PROXY_API_KEY")
    env = child_environment(settings, tmp_path, CONFIG, source)
    assert env == {"PATH": "/bin", "LC_ALL": "C", "https_proxy": "http://proxy:3128", "MY_TOOL": "x",
                   "CODEX_HOME": str(tmp_path)}  # fmt: skip


def test_the_denylist_wins_over_the_allowlist(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, codex_env_allowlist="MY_TOOL", codex_env_denylist="my_tool,TZ")
    env = child_environment(settings, tmp_path, {}, {"MY_TOOL": "x", "TZ": "UTC", "HOME": "/h"})
    assert env == {"HOME": "/h", "CODEX_HOME": str(tmp_path)}


def test_a_provider_key_from_the_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model_providers\.mine\.env_key = 'MINE_KEY'.*experimental_bearer_token"):
        check_credentials({**CONFIG, "model_provider": "mine"}, tmp_path, {})
    check_credentials(CONFIG, tmp_path, {})  # an entry that is not the active provider is only kept out of the env
