"""Which model provider Codex will use, read from the same config.toml Codex reads, and whether it is local."""

from __future__ import annotations

import ipaddress
import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ada_url

from app.config import ConfigError

log = logging.getLogger("codex_wrapper")

# Codex's built-in providers and where they send requests; Codex refuses a config.toml entry with these names.
BUILTIN_PROVIDERS = {
    "openai": "https://api.openai.com/v1",
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://localhost:1234/v1",
}
OSS_PROVIDERS = ("ollama", "lmstudio")  # Codex takes their URL from CODEX_OSS_BASE_URL when it is set


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str | None  # None: named but defined nowhere

    @property
    def is_local(self) -> bool:
        return self.base_url is not None and is_loopback_url(self.base_url)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Forms that URL parsers read differently (Python's urlsplit and the WHATWG parser of Codex's Rust `url` crate):
# user-info, backslashes, whitespace and control characters, percent-escapes in the authority.
_AMBIGUOUS = re.compile(r"[@\\\s\x00-\x1f\x7f]")


def is_loopback_url(url: str) -> bool:
    """127.0.0.0/8, ::1, `localhost`, or a unix socket, as Codex reads the URL (WHATWG, like its Rust `url` crate)
    and as Python does; anything else, ambiguous or unparsable is remote."""
    if _AMBIGUOUS.search(url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme in ("unix", "http+unix", "https+unix"):
        return True
    if parts.scheme not in ("http", "https") or not host or "%" in parts.netloc:
        return False
    try:
        whatwg = ada_url.URL(url)
    except ValueError:
        return False
    codex_host = whatwg.hostname.strip("[]")
    if whatwg.username or whatwg.password or codex_host != host.lower():
        return False  # the two parsers disagree on where the request goes
    return is_loopback_host(codex_host)


def read_config(codex_home: Path) -> dict[str, Any]:
    """CODEX_HOME/config.toml as Codex reads it; ConfigError when it cannot be read or parsed."""
    path = codex_home / "config.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


class ProviderResolver:
    """The provider of CODEX_HOME/config.toml (active profile first), re-read when the file changes."""

    def __init__(self, codex_home: Path, codex_env: dict[str, str]) -> None:
        self.codex_home = codex_home
        self.codex_env = codex_env  # the environment Codex runs with
        self._stamp: tuple[int, int] | None = None
        self._provider = Provider("openai", BUILTIN_PROVIDERS["openai"])
        self._config: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """config.toml as last read (by `current`)."""
        self.current()
        return self._config

    def current(self) -> Provider:
        path = self.codex_home / "config.toml"
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            config = read_config(self.codex_home)
            self._provider = resolve_provider(config, self.codex_env)
            self._config, self._stamp = config, stamp
        return self._provider


def resolve_provider(config: dict[str, Any], env: dict[str, str]) -> Provider:
    given = config.get("profiles")
    profiles: dict[str, Any] = given if isinstance(given, dict) else {}
    profile = profiles.get(str(config.get("profile", ""))) if config.get("profile") else None
    name = (profile or {}).get("model_provider") or config.get("model_provider") or "openai"
    name = str(name)
    if name in OSS_PROVIDERS and env.get("CODEX_OSS_BASE_URL"):
        return Provider(name, env["CODEX_OSS_BASE_URL"])
    if name in BUILTIN_PROVIDERS:
        return Provider(name, BUILTIN_PROVIDERS[name])
    given = config.get("model_providers")
    entries: dict[str, Any] = given if isinstance(given, dict) else {}
    entry = entries.get(name)
    url = entry.get("base_url") if isinstance(entry, dict) else None
    return Provider(name, str(url) if url else None)
