"""`python -m app [serve|doctor|config]`: run the gateway, check a setup, show the effective settings."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import uvicorn

from app.api.health import SERVICE
from app.codex.binary import CodexBinary, CodexMissing, codex_note, is_tested, locate_codex, probe_version
from app.codex.env import check_credentials, child_environment
from app.codex.home import isolated_home_dir
from app.codex.login import not_logged_in, read_login
from app.codex.plan_limits import SOURCE_READ, PlanLimits, Snapshot, iso, summary
from app.codex.plan_limits_shared import shared_state
from app.codex.provider import ProviderResolver, read_config
from app.codex.sandbox_probe import probe_sandbox
from app.config import ConfigError, Settings, load_settings
from app.effective import lines as effective_lines
from app.engines.app_server.pool import Worker
from app.engines.app_server.protocol import ProtocolDrift, check_protocol
from app.engines.app_server.rpc import RpcError, SessionClosed
from app.healthcheck import ready_url
from app.middleware.header_limits import http_protocol
from app.policy.layout import check_layout
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
        # then running turns are stopped; uvicorn types it int but hands it to asyncio.wait_for: a float works
        timeout_graceful_shutdown=settings.codex_shutdown_grace_seconds,  # type: ignore[arg-type]
        http=http_protocol(settings),  # header size and time bounded (app/middleware/header_limits.py)
        server_header=False,
    )
    return 0


def check_codex(settings: Settings, home: Path) -> Check:
    try:
        located = locate_codex(settings)
        env = {**child_environment(settings, home), **located.extra_env}
        binary = probe_version(located, env)
    except CodexMissing as exc:
        fix = "correct CODEX_PATH, or unset it to run the pinned Codex" if settings.codex_path else "run `make install`"
        return False, f"codex: {exc}. Fix: {fix}"
    note = codex_note(binary)
    if not is_tested(binary):
        return False, f"codex: {note}"
    if settings.codex_engine == "app-server":
        try:
            check_protocol(binary, env)
        except ProtocolDrift as exc:
            return False, f"codex: {exc}"
    if note:
        return True, f"codex: {note} ({settings.codex_engine} engine)"
    return True, f"codex: {binary.version} at {binary.path} ({binary.origin}; {settings.codex_engine} engine)"


def check_login(settings: Settings, home: Path) -> Check:
    """Asked of Codex itself, as at startup (app/codex/login.py): the same line when there is none."""
    try:
        located = locate_codex(settings)
    except CodexMissing:
        return False, "login: cannot tell without Codex (see the codex line)"
    home = home if home.is_dir() else settings.user_codex_home  # an isolated home not built yet
    with tempfile.TemporaryDirectory(prefix="codex-wrapper-doctor-") as empty:
        if not home.is_dir():  # a fresh machine: Codex asked with an empty home, as the sandbox check does
            home = Path(empty)
        cwd = settings.codex_workdir if settings.codex_workdir.is_dir() else home
        env = {**child_environment(settings, home), **located.extra_env}
        login = asyncio.run(read_login(located, env, cwd, settings.codex_engine))
    if login.error:
        return False, f"login: {login.error}. Fix: see the codex line"
    if login.missing:
        return False, f"login: {not_logged_in(settings)}"
    if not login.needed:
        return True, "login: not needed by the model provider (its credentials are its own)"
    return True, f"login: {login.account} account"


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
    note = ""
    with tempfile.TemporaryDirectory(prefix="codex-wrapper-doctor-home-") as empty:
        if not home.is_dir():  # Codex will not start without it; the gateway creates it before its own probe
            note = f"; {home} does not exist yet (the gateway creates it), so the probe ran with an empty CODEX_HOME"
        probe_home = home if home.is_dir() else Path(empty)
        env = {**child_environment(settings, probe_home), **located.extra_env}
        status = asyncio.run(probe_sandbox(located, env))
    if status.works:
        return True, f"sandbox: works ({status.detail}){note}"
    if status.refuses(settings.codex_mode, settings.codex_sandbox_mode):
        return False, f"sandbox: {status.reason()}{note}"
    return True, (
        f"sandbox: not working ({status.detail}); the default mode needs none, agent requests are refused{note}"
    )


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
        where = f"{settings.host}:{settings.port}"
        health = ready_url({"HOST": settings.host, "PORT": str(settings.port)}, "/health")
        if exc.errno == errno.EADDRINUSE and answers_as_gateway(health):
            return True, f"port: {where} in use by this gateway (a running codex-wrapper answers /health there)"
        return False, f"port: cannot listen on {where} ({exc.strerror or exc}). Fix: set PORT"
    return True, f"port: {settings.host}:{settings.port} free"


def answers_as_gateway(url: str) -> bool:
    """Whether a Codex-Wrapper answers GET /health at `url` (the port is busy with the gateway being checked)."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to this machine
        with opener.open(url, timeout=3) as response:
            return bool(json.loads(response.read(4096)).get("service") == SERVICE)
    except (OSError, ValueError, AttributeError):
        return False


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


def check_plan(settings: Settings, home: Path) -> Check:
    """The ChatGPT plan's windows when they are known: from the shared store (what running gateways last saw), else
    from account/rateLimits/read (a ChatGPT login only). Informational: never a failure."""
    try:
        located = locate_codex(settings)
    except CodexMissing:
        located = None
    env = {**child_environment(settings, home), **(located.extra_env if located else {})}
    snapshot, why = asyncio.run(_read_plan(settings, located, env, home))
    if snapshot is not None and snapshot.taken_at:
        return True, f"plan: {summary(snapshot, time.time())} (from {snapshot.source}, {iso(snapshot.taken_at)})"
    return True, f"plan: limits not known ({why}); GET /limits shows them once a reply through app-server reports them"


def _provider_key(settings: Settings, home: Path) -> str:
    try:
        provider = ProviderResolver(home, child_environment(settings, home)).current()
    except ConfigError:
        return ""
    return f"{provider.name}@{provider.base_url}"


async def _read_plan(
    settings: Settings, located: CodexBinary | None, env: dict[str, str], home: Path
) -> tuple[Snapshot | None, str]:
    shared = shared_state(settings, home, _provider_key(settings, home))
    if shared is not None:
        try:
            found = await asyncio.wait_for(shared.load(), settings.codex_store_timeout_seconds + 1)
        except Exception as exc:
            found = None
            why = f"the shared store did not answer: {type(exc).__name__}"
        else:
            why = "no gateway has seen them yet"
        finally:
            await shared.close()
        if found is not None:
            return found, ""
    else:
        why = ""
    if located is None:
        return None, "no Codex"
    worker = Worker(0, located, env, settings.codex_workdir if settings.codex_workdir.is_dir() else home)
    limits = PlanLimits()
    try:
        await worker.spawn()
        assert worker.session is not None
        result = await asyncio.wait_for(worker.session.request("account/rateLimits/read", {}), 20)
        limits.update(result, SOURCE_READ)
    except (OSError, TimeoutError, RpcError, SessionClosed) as exc:
        return None, "; ".join(part for part in (why, str(exc)[:150]) if part)
    finally:
        await worker.terminate()
    return limits.snapshot, ""


async def _store_health(store: ResponseStore) -> StoreHealth:
    try:
        return await store.health(detail=True)
    finally:
        await store.close()


CHECKS: tuple[Callable[[Settings, Path], Check], ...] = (
    check_codex, check_login, check_provider, check_sandbox, check_workdir, check_sandbox_layout, check_port,
    check_store, check_plan,
)  # fmt: skip


def doctor(settings: Settings) -> int:
    """Each check on one line; exit 0 only when all hold."""
    home = isolated_home_dir(settings) if settings.codex_isolated_home else settings.user_codex_home
    results = [check(settings, home) for check in CHECKS]
    for passed, line in results:
        print(f"{'ok  ' if passed else 'FAIL'} {line}")
    return 0 if all(passed for passed, _ in results) else 1


def config(settings: Settings) -> int:
    """The effective settings, one KEY=value per line, usable as an env file; secrets only as comments."""
    print("\n".join(effective_lines(settings)))
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
