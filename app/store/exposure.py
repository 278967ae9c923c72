"""A Redis that a sandboxed command could talk to: refused at startup unless it asks for a password.

With network granted to sandboxes (CODEX_CLIENT_NETWORK_ACCESS, or config.toml's
`sandbox_workspace_write.network_access`), a command reaches every address the gateway reaches: a Redis without a
password would hand it every key holder's stored conversations, and let it append to them. Any host counts, not
only loopback: the sandbox shares the gateway's network.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from app.config import REDIS_SCHEMES, ConfigError, Settings


def has_password(url: str) -> bool:
    """A password in the URL's user-info or (unix sockets) in a `password=` query parameter."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return False
    return bool(password) or bool(parse_qs(parts.query).get("password", [""])[0])


def redis_urls(settings: Settings) -> list[tuple[str, str]]:
    """(setting, URL) of every Redis the gateway uses."""
    found = []
    if settings.store_is_redis:
        found.append(("CODEX_STORE_URL", settings.codex_store_url))
    limits = settings.rate_limit_storage_uri or ""
    if settings.rate_limit_per_minute and limits.startswith(("redis", *REDIS_SCHEMES)):
        found.append(("RATE_LIMIT_STORAGE_URI", limits))
    return found


def check_store_exposure(settings: Settings, sandbox_network: bool) -> None:
    """ConfigError naming the setting when sandboxes may have network and a Redis has no password."""
    if not sandbox_network:
        return
    for name, url in redis_urls(settings):
        if not has_password(url):
            raise ConfigError(
                f"{name} is a Redis without a password while sandboxed commands may have network "
                "(CODEX_CLIENT_NETWORK_ACCESS, or sandbox_workspace_write.network_access in config.toml): any key "
                "holder's command could read and change every stored conversation. Give Redis a password "
                "(requirepass or an ACL user) and put it in the URL (redis://user:password@host:6379/0), or keep "
                "the sandbox's network off"
            )
