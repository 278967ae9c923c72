"""Stored responses: one interface (base.py), two backends chosen by CODEX_STORE_URL (SQLite, Redis)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.config import ConfigError, Settings
from app.store.base import ResponseStore, RunRecord, StoredResponse, StoreHealth, StoreUnavailable, items_of
from app.store.redis import RedisStore
from app.store.sqlite import SqliteStore

__all__ = [
    "RedisStore", "ResponseStore", "RunRecord", "SqliteStore", "StoreHealth", "StoreUnavailable", "StoredResponse",
    "items_of", "masked_url", "open_store", "sqlite_path",
]  # fmt: skip


def masked_url(url: str) -> str:
    """`url` with its password replaced by ***, for logs, doctor and `python -m app config`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(settings: Settings) -> Path:
    url = settings.codex_store_url
    if not url:
        return settings.codex_data_dir / "responses.sqlite3"
    return Path(url.removeprefix("sqlite://")).expanduser().resolve()


def open_store(settings: Settings) -> ResponseStore:
    """The configured store; a SQLite file that cannot be opened stops startup, an unreachable Redis does not
    (instances may start before it: requests that need it get 503 until it answers)."""
    ttl = settings.codex_responses_ttl_days
    if settings.store_is_redis:
        url = settings.codex_store_url
        try:
            urlsplit(url).port  # noqa: B018 (raises on a bad port)
        except ValueError as exc:
            raise ConfigError(f"invalid setting CODEX_STORE_URL={masked_url(url)!r}: {exc}") from None
        return RedisStore(url, masked_url(url), ttl, settings.codex_store_timeout_seconds)
    path = sqlite_path(settings)
    try:
        return SqliteStore(path, ttl)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the response store {path}: {exc}") from None
