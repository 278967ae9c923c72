"""create_app(): settings, Codex discovery, engine and executor, routes."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response

from app.api import chat, health, models
from app.api.streaming import ClientGone
from app.auth import RateLimiter
from app.catalog import discover
from app.codex_cli import CodexMissing, child_environment, locate_codex, probe_version
from app.config import ConfigError, Settings, load_settings
from app.engines.exec import ExecEngine
from app.errors import install_error_handlers
from app.executor import Executor
from app.gateway import Gateway

log = logging.getLogger("codex_wrapper")


async def start_gateway(settings: Settings) -> Gateway:
    binary, missing = None, ""
    env: dict[str, str] = {}
    try:
        located = locate_codex(settings)
        env = child_environment(settings, located)
        binary = await probe_version(located, env)
        log.info("Codex %s at %s", binary.version, binary.path)
    except CodexMissing as exc:
        missing = str(exc)
        log.warning("Codex is not available: %s", missing)
    catalog = await discover(binary, env, settings.codex_home)
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
    return Gateway(settings, binary, missing, catalog, executor, RateLimiter(settings.rate_limit_per_minute))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.gateway = await start_gateway(settings)
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
    return create_app(settings)


app = _app_or_exit()
