"""The environment Codex runs with: built from an allow-list, never holding a provider credential.

Every sandboxed command sees Codex's environment: its own `env`, and `/proc/1/environ` (PID 1 of the sandbox is
Codex's sandbox launcher, which carries Codex's environment). So nothing in it may be a secret. Codex gets the
names below, CODEX_ENV_ALLOWLIST, and CODEX_HOME; never a gateway setting, a CODEX_ENV_DENYLIST name, a proxy URL
with a password, or a credential (OPENAI_API_KEY, CODEX_API_KEY, any provider's `env_key`). Codex reads its
credentials from the CODEX_HOME it runs with instead (auth.json, or `experimental_bearer_token` of a provider entry
in config.toml), which every turn is denied (app/policy/permissions.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.codex.provider import read_config
from app.config import ConfigError, Settings

log = logging.getLogger("codex_wrapper")

ALLOWED = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "TMPDIR", "LANG", "LANGUAGE",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "CODEX_OSS_BASE_URL", "RUST_LOG", "RUST_BACKTRACE",
    }
)  # fmt: skip
ALLOWED_PREFIXES = ("LC_",)
PROXIES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"})  # passed unless they hold a password
CREDENTIALS = frozenset({"OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_ACCESS_TOKEN", "AZURE_OPENAI_API_KEY"})


def gateway_variable_names() -> set[str]:
    """Every environment variable the gateway itself reads: none of them is Codex's business."""
    return {name.upper() for name in Settings.model_fields}


def provider_entries(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    entries = config.get("model_providers")
    return {str(k): v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}


def credential_names(config: Mapping[str, Any]) -> set[str]:
    """OPENAI_API_KEY, CODEX_API_KEY and the like, and every `env_key` a provider of config.toml names."""
    names = set(CREDENTIALS)
    names |= {str(e["env_key"]).upper() for e in provider_entries(config).values() if e.get("env_key")}
    return names


def _allowed(name: str, extra: set[str]) -> bool:
    upper = name.upper()
    return upper in ALLOWED or upper in PROXIES or upper.startswith(ALLOWED_PREFIXES) or upper in extra


def _holds_password(value: str) -> bool:
    return "@" in value.split("//", 1)[-1].split("/", 1)[0]


def child_environment(
    settings: Settings,
    codex_home: Path,
    config: Mapping[str, Any] | None = None,
    source: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The allowed variables of `source` (the server's environment), CODEX_HOME set to the home prepared for Codex;
    `config`: its config.toml (read here when not given)."""
    if config is None:
        try:
            config = read_config(codex_home)
        except ConfigError:
            config = {}
    extra = {name.upper() for name in settings.codex_env_allowlist}
    hidden = gateway_variable_names() | {n.upper() for n in settings.codex_env_denylist} | credential_names(config)
    env = {}
    for key, value in source.items():
        upper = key.upper()
        if upper in hidden or not _allowed(key, extra):
            continue
        if upper in PROXIES and _holds_password(value):
            continue
        env[key] = value
    env["CODEX_HOME"] = str(codex_home)
    return env


def active_provider_entry(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    profiles = config.get("profiles")
    profile = (
        profiles.get(str(config.get("profile", ""))) if isinstance(profiles, dict) and config.get("profile") else None
    )
    name = str((profile or {}).get("model_provider") or config.get("model_provider") or "openai")
    return name, provider_entries(config).get(name, {})


def check_credentials(config: Mapping[str, Any], codex_home: Path, source: Mapping[str, str] = os.environ) -> None:
    """Refuse a provider that would take its key from Codex's environment; warn about credentials left unused."""
    name, entry = active_provider_entry(config)
    if entry.get("env_key"):
        raise ConfigError(
            f"model_providers.{name}.env_key = {str(entry['env_key'])!r} in {codex_home / 'config.toml'}: Codex "
            "would need that key in its environment, which every sandboxed command can read. Put the key in "
            f"that entry as experimental_bearer_token instead (CODEX_HOME is denied to every turn) and remove env_key"
        )
    present = sorted(n for n in source if n.upper() in CREDENTIALS)
    if present:
        log.warning(
            "%s set in the gateway's environment is not passed to Codex (sandboxed commands could read it): "
            "Codex uses %s (`codex login --with-api-key` writes it) or a provider's experimental_bearer_token",
            ", ".join(present),
            codex_home / "auth.json",
        )
