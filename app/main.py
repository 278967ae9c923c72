"""create_app(): settings, Codex discovery, engine and executor, routes."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

from app.api import chat, health, models
from app.api.streaming import ClientGone
from app.auth import RateLimiter
from app.catalog import discover
from app.codex_cli import CodexMissing, child_environment, locate_codex, probe_version
from app.codex_home import prepare_codex_home
from app.config import ConfigError, Settings, load_settings
from app.engines.exec import ExecEngine
from app.errors import install_error_handlers
from app.executor import Executor
from app.gateway import Gateway
from app.provider import Provider, ProviderResolver, is_loopback_host

log = logging.getLogger("codex_wrapper")


def startup_summary(settings: Settings, provider: Provider, codex_home: Path) -> str:
    local = "on" if settings.codex_local_only else "off"
    verdict = "local" if provider.is_local else "remote"
    return (
        f"codex-wrapper on {settings.host}:{settings.port}: sandbox default {settings.codex_sandbox_mode}, "
        f"danger-full-access {'allowed' if settings.codex_allow_danger_full_access else 'refused'}, "
        f"local-only {local} (provider {provider.name} at {provider.base_url or 'undefined'}: {verdict}), "
        f"auth {'on' if settings.api_keys else 'off'}, CODEX_HOME {codex_home}"
    )


async def start_gateway(
    settings: Settings, codex_home: Path, providers: ProviderResolver, limiter: RateLimiter
) -> Gateway:
    binary, missing = None, ""
    env = providers.codex_env
    try:
        located = locate_codex(settings)
        env = {**env, **located.extra_env}
        binary = await probe_version(located, env)
        log.info("Codex %s at %s", binary.version, binary.path)
    except CodexMissing as exc:
        missing = str(exc)
        log.warning("Codex is not available: %s", missing)
    catalog = await discover(binary, env, codex_home)
    executor = None
    if binary is not None:
        executor = Executor(
            ExecEngine(binary, env),
            max_parallel=settings.codex_max_parallel_requests,
            max_queue=settings.codex_max_queue,
            queue_timeout=settings.codex_queue_timeout_seconds,
            turn_timeout=settings.codex_timeout,
        )
        await executor.engine.start()
    return Gateway(settings, codex_home, providers, binary, missing, catalog, executor, limiter)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Everything that can stop startup (settings, CODEX_HOME, rate-limit storage) fails here, before serving."""
    settings = settings or load_settings()
    codex_home = prepare_codex_home(settings)
    providers = ProviderResolver(codex_home, child_environment(settings, codex_home))
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_storage_uri)
    provider = providers.current()
    log.info(startup_summary(settings, provider, codex_home))
    if settings.codex_local_only and not provider.is_local:
        log.warning(
            "CODEX_LOCAL_ONLY=1 but Codex would use %s at %s: requests will be refused",
            provider.name,
            provider.base_url,
        )
    if not settings.api_keys and not is_loopback_host(settings.host):
        log.warning("listening on %s without PROXY_API_KEY: anyone who can reach it can run Codex", settings.host)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.gateway = await start_gateway(settings, codex_home, providers, limiter)
        yield
        executor = app.state.gateway.executor
        if executor is not None:
            await executor.drain()
            await executor.engine.stop()

    app = FastAPI(title="Codex-Wrapper", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)

    @app.exception_handler(ClientGone)
    async def _client_gone(_request: object, _exc: ClientGone) -> Response:
        return Response(status_code=499)

    for module in (health, models, chat):
        app.include_router(module.router)
    return app


def _app_or_exit() -> FastAPI:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"codex-wrapper: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return create_app(settings)
    except ConfigError as exc:
        print(f"codex-wrapper: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = _app_or_exit()
