"""`python -m app config`: every setting's effective value, in the form the environment accepts.

Defaults are resolved (the CODEX_HOME in effect, the Codex binary that would run, the allowed Host names, the
rate-limit storage and the store), paths are absolute and booleans `true`/`false`, so the output pasted back as
an env file gives the same settings. Secrets are never printed: a line whose value would hold one is a comment.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.codex.binary import CodexMissing, locate_codex
from app.codex.home import isolated_home_dir
from app.config import Settings
from app.middleware.hosts import allowed_hosts
from app.store import masked_url, sqlite_path

HEADER = "# codex-wrapper: the effective settings (environment, env file and defaults); usable as an env file"


def env_text(value: object) -> str:
    """A value as the settings read it back: booleans true/false, lists comma-separated, unset empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(env_text(item) for item in value)
    return str(value)


def resolved(settings: Settings) -> dict[str, object]:
    """The values whose default is decided at run time, as the gateway would use them."""
    hosts = allowed_hosts(settings)
    try:  # the executable that would run: the native binary behind an npm launcher
        codex: Path | None = locate_codex(settings).path.resolve()
    except CodexMissing:
        codex = None
    return {
        "codex_config_dir": settings.user_codex_home.absolute(),
        "codex_isolated_home_dir": isolated_home_dir(settings).absolute(),
        "codex_path": codex,
        "codex_allowed_hosts": ("*",) if hosts is None else hosts,
        "rate_limit_storage_uri": settings.rate_limit_storage,
        "codex_store_url": settings.codex_store_url if settings.store_is_redis else sqlite_path(settings),
        # the env file read, as load_settings read it (only the OS environment names it)
        "codex_env_file": Path(os.environ.get("CODEX_ENV_FILE", ".env")).expanduser().absolute(),
    }


def lines(settings: Settings) -> list[str]:
    """One `NAME=value` line per setting, in alphabetical order, after a header comment."""
    values = resolved(settings)
    out = [HEADER]
    for name in sorted(Settings.model_fields):
        variable = name.upper()
        value = values.get(name, getattr(settings, name))
        if name == "proxy_api_key" and settings.api_keys:
            count = len(settings.api_keys)
            out.append(f"# {variable}=*** ({count} key{'s' if count != 1 else ''}): not shown, set it yourself")
            continue
        text = env_text(value)
        if name in ("rate_limit_storage_uri", "codex_store_url") and masked_url(text) != text:
            out.append(f"# {variable}={masked_url(text)} (its password is not shown, set it yourself)")
            continue
        if name == "codex_path" and value is None:
            out.append(f"# {variable}: no Codex found (run `make install`)")
        out.append(f"{variable}={text}")
    return out
