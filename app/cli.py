"""`python -m app [serve|doctor|config]`: run the gateway, check a setup, show the effective settings."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

from app.codex_cli import CodexMissing, locate_codex, probe_version
from app.codex_env import check_credentials, child_environment
from app.codex_home import isolated_home_dir
from app.config import ConfigError, Settings, load_settings
from app.engines.protocol import ProtocolDrift, check_protocol
from app.http_guard import http_protocol
from app.layout import check_layout
from app.provider import ProviderResolver, read_config
from app.sandbox import probe_sandbox
from app.store import ResponseStore, StoreHealth, masked_url, open_store
from app.store.exposure import check_store_exposure

Check = tuple[bool, str]  # passed, the line to print (with the fix when it failed)


def serve(settings: Settings) -> int:
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=settings.codex_shutdown_grace_seconds,  # then running turns are stopped
        http=http_protocol(settings),  # header size and time bounded (app/http_guard.py)
        server_header=False,
    )
    return 0


def check_codex(settings: Settings, home: Path) -> Check:
    try:
        located = locate_codex(settings)
        env = {**child_environment(settings, home), **located.extra_env}
        binary = probe_version(located, env)
    except CodexMissing as exc:
        return False, f"codex: {exc}. Fix: run `npm ci` in the repository, or set CODEX_PATH to the codex binary"
    if settings.codex_engine == "app-server":
        try:
            check_protocol(binary, env)
        except ProtocolDrift as exc:
            return False, f"codex: {exc}"
    return True, f"codex: {binary.version} at {binary.path} ({settings.codex_engine} engine)"


def check_login(settings: Settings, home: Path) -> Check:
    try:
        provider = ProviderResolver(home, child_environment(settings, home)).current()
    except ConfigError:
        return False, "login: cannot tell while config.toml is unreadable (see the provider line)"
    if provider.name != "openai":
        return True, f"login: not needed for provider {provider.name} (its credentials are its own)"
    user_home = settings.user_codex_home  # an isolated home links to the user's auth.json
    if (user_home / "auth.json").exists():
        return True, f"login: {user_home / 'auth.json'} present"
    return False, f"login: no {user_home / 'auth.json'}. Fix: CODEX_HOME={user_home} npx codex login"


def check_provider(settings: Settings, home: Path) -> Check:
    try:
        provider = ProviderResolver(home, child_environment(settings, home)).current()
        check_credentials(read_config(home), home)
    except ConfigError as exc:
        return False, f"provider: {exc}. Fix: correct {home / 'config.toml'}"
    where = f"{provider.name} at {provider.base_url or 'an undefined URL'}"
    verdict = "local" if provider.is_local else "remote"
    if settings.codex_local_only and not provider.is_local:
        return False, (
            f"provider: {where} is {verdict} but CODEX_LOCAL_ONLY=1. Fix: point model_provider in "
            f"{home / 'config.toml'} at a loopback base_url, or set CODEX_LOCAL_ONLY=0"
        )
    return True, f"provider: {where} ({verdict}; local-only {'on' if settings.codex_local_only else 'off'})"


def check_sandbox(settings: Settings, home: Path) -> Check:
    """A real sandboxed command, as at startup: agent turns are refused where Codex's sandbox does not work."""
    try:
        located = locate_codex(settings)
    except CodexMissing:
        return False, "sandbox: cannot tell without Codex (see the codex line)"
    status = asyncio.run(probe_sandbox(located, {**child_environment(settings, home), **located.extra_env}))
    if status.works:
        return True, f"sandbox: works ({status.detail})"
    if status.refuses(settings.codex_mode, settings.codex_sandbox_mode):
        return False, f"sandbox: {status.reason()}"
    return True, f"sandbox: not working ({status.detail}); the default mode needs none, agent requests are refused"


def check_workdir(settings: Settings, _home: Path) -> Check:
    path = settings.codex_workdir
    if path.is_dir() and os.access(path, os.W_OK | os.X_OK):
        return True, f"workdir: {path} writable"
    return False, f"workdir: {path} is not a writable directory. Fix: create it or set CODEX_WORKDIR"


def check_sandbox_layout(settings: Settings, home: Path) -> Check:
    try:
        check_layout(settings, home, read_config(home))
    except ConfigError as exc:
        return False, f"layout: {exc}"
    return True, "layout: nothing that configures Codex lies where its sandbox can write"


def check_port(settings: Settings, _home: Path) -> Check:
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.bind(infos[0][4])
    except OSError as exc:
        return False, f"port: cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}). Fix: set PORT"
    return True, f"port: {settings.host}:{settings.port} free"


def check_store(settings: Settings, home: Path) -> Check:
    try:
        table = read_config(home).get("sandbox_workspace_write")
        network = isinstance(table, dict) and table.get("network_access") is True
        check_store_exposure(settings, settings.codex_client_network_access or network)
    except ConfigError as exc:
        return False, f"store: {exc}"
    try:
        store = open_store(settings)
    except ConfigError as exc:
        return False, f"store: {exc}. Fix: make its folder writable, or set CODEX_DATA_DIR or CODEX_STORE_URL"
    health = asyncio.run(_store_health(store))
    where = f"{health.backend} at {health.location}"
    if health.state != "ok":
        fix = "start Redis or correct CODEX_STORE_URL" if settings.store_is_redis else "correct CODEX_STORE_URL"
        return False, f"store: {where} is unavailable ({health.detail}). Fix: {fix}"
    line = f"store: {where} answering ({health.detail})"
    if settings.rate_limit_per_minute:
        line += f"; rate limits counted in {masked_url(settings.rate_limit_storage)}"
    return True, line


async def _store_health(store: ResponseStore) -> StoreHealth:
    try:
        return await store.health(detail=True)
    finally:
        await store.close()


CHECKS: tuple[Callable[[Settings, Path], Check], ...] = (
    check_codex, check_login, check_provider, check_sandbox, check_workdir, check_sandbox_layout, check_port,
    check_store,
)  # fmt: skip


def doctor(settings: Settings) -> int:
    """Each check on one line; exit 0 only when all hold."""
    home = isolated_home_dir(settings) if settings.codex_isolated_home else settings.user_codex_home
    results = [check(settings, home) for check in CHECKS]
    for passed, line in results:
        print(f"{'ok  ' if passed else 'FAIL'} {line}")
    return 0 if all(passed for passed, _ in results) else 1


def config(settings: Settings) -> int:
    """The effective settings, one KEY=value per line; secrets masked."""
    for name in sorted(Settings.model_fields):
        value = getattr(settings, name)
        if name == "proxy_api_key":
            value = f"*** ({len(settings.api_keys)} key{'s' if len(settings.api_keys) != 1 else ''})" if value else ""
        elif name == "rate_limit_storage_uri":
            value = masked_url(settings.rate_limit_storage) + ("" if value else " (unset: the default)")
        elif name == "codex_store_url":
            value = masked_url(value) if value else f"(unset: sqlite at {settings.codex_data_dir}/responses.sqlite3)"
        elif isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        print(f"{name.upper()}={'' if value is None else value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Codex-Wrapper")
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "doctor", "config"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        if args.command == "doctor":
            print(f"FAIL settings: {exc}. Fix: correct it in the environment or in CODEX_ENV_FILE (default .env)")
            return 1
        print(f"codex-wrapper: {exc}", file=sys.stderr)
        return 2
    return {"serve": serve, "doctor": doctor, "config": config}[args.command](settings)
