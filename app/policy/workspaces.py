"""Per-user workspaces: with several API keys, each key works in a folder of its own under CODEX_WORKDIR.

The folder is named from a slow hash of the key (`key-` + 16 hex digits of PBKDF2-SHA256, 100,000 rounds), so one
user's files and AGENTS.md never reach another's turns; the sandbox also denies each turn every other entry of
CODEX_WORKDIR. The names themselves can be listed; the slow hash keeps them from helping anyone guess a key.
A server with one key or none keeps CODEX_WORKDIR itself as everyone's workspace.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from app.config import ConfigError, Settings


@functools.lru_cache(maxsize=256)
def folder_name(key: str) -> str:
    return "key-" + hashlib.pbkdf2_hmac("sha256", key.encode(), b"codex-wrapper-workspace", 100_000)[:8].hex()


def per_user(settings: Settings) -> bool:
    return len(settings.api_keys) > 1


def user_workspace(settings: Settings, token: str | None) -> Path:
    """The workspace of the caller whose (accepted) bearer token is `token`."""
    if not per_user(settings) or token is None:
        return settings.codex_workdir
    return settings.codex_workdir / folder_name(token)


def prepare_workspaces(settings: Settings) -> None:
    """Create every key's folder at startup (0700), so each turn's sandbox can deny all the others."""
    if not per_user(settings):
        return
    for key in settings.api_keys:
        path = settings.codex_workdir / folder_name(key)
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the workspace {path}: {exc.strerror or exc}") from None
