"""create_app(): settings, Codex discovery, engine and executor, routes."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from app.api import chat, health, limits, models, responses
from app.api.errors import install_error_handlers
from app.api.streaming import ClientGone
from app.auth import RateLimiter
from app.background.runs import BackgroundRuns
from app.codex.binary import CodexBinary, CodexMissing, codex_note, locate_codex, probe_version
from app.codex.catalog import Catalog, discover
from app.codex.command_limits import Cgroups, open_cgroups
from app.codex.env import check_credentials, child_environment
from app.codex.home import codex_home_path, prepare_codex_home
from app.codex.login import LoginWatch, not_logged_in, read_login
from app.codex.plan_limits import PlanLimits
from app.codex.plan_limits_shared import plan_limits
from app.codex.provider import Provider, ProviderResolver, is_loopback_host, read_config
from app.codex.reaper import end_leftovers
from app.codex.sandbox_probe import NOT_PROBED, SandboxStatus, probe_sandbox
from app.config import ConfigError, Settings, load_settings
from app.engines.app_server.engine import AppServerEngine
from app.engines.app_server.protocol import ProtocolDrift, check_protocol
from app.engines.base import Engine
from app.engines.exec import ExecEngine
from app.errors import ApiError
from app.executor import Executor
from app.gateway import Gateway
from app.images import ImageFetcher
from app.metrics import Metrics
from app.middleware.body_limit import BodyLimit
from app.middleware.hosts import HostAllowList, allowed_hosts
from app.middleware.request_log import RequestObserver, access_log
from app.middleware.shutdown import ShutdownAnswer
from app.policy.layout import check_layout, migrate_profile, private_temp_dir
from app.policy.permissions import SandboxLayout
from app.policy.run_policy import XCodex, operator_network, resolve_policy
from app.policy.worker_seal import WorkerSeal, choose_seal, home_view
from app.policy.workspaces import per_user, prepare_workspaces
from app.store import open_store
from app.store.exposure import check_store_exposure
from app.turn import Turn

log = logging.getLogger("codex_wrapper")
EngineFactory = Callable[[Settings], Engine]  # create_app's seam for in-process tests (tests/fakes/engine.py)


def startup_summary(settings: Settings, provider: Provider, codex_home: Path) -> str:
    local = "on" if settings.codex_local_only else "off"
    verdict = "local" if provider.is_local else "remote"
    return (
        f"codex-wrapper on {settings.host}:{settings.port}: sandbox default {settings.codex_sandbox_mode}, "
        f"danger-full-access {'allowed' if settings.codex_allow_danger_full_access else 'refused'}, "
        f"clients may choose {'/'.join(settings.codex_client_sandbox_modes)}"
        f"{' and network access' if settings.codex_client_network_access else ''}, "
        f"web search for clients {settings.codex_client_web_search}, "
        f"local-only {local} (provider {provider.name} at {provider.base_url or 'undefined'}: {verdict}), "
        f"auth {'on' if settings.api_keys else 'off'}, CODEX_HOME {codex_home}"
    )


def find_codex(settings: Settings, base_env: dict[str, str]) -> tuple[CodexBinary | None, dict[str, str], str]:
    """The Codex binary, the environment it runs with, or why it is missing; a protocol drift stops startup."""
    try:
        located = locate_codex(settings)
        env = {**base_env, **located.extra_env}
        binary = probe_version(located, env)
    except CodexMissing as exc:
        log.warning("Codex is not available: %s", exc)
        return None, base_env, str(exc)
    note = codex_note(binary)
    if note:
        log.warning(note)
    else:
        log.info("Codex %s at %s (%s, the tested version)", binary.version, binary.path, binary.origin)
    if settings.codex_engine == "app-server":
        try:
            check_protocol(binary, env)
        except ProtocolDrift as exc:
            raise ConfigError(str(exc)) from None
    return binary, env, ""


async def prewarm_defaults(
    engine: Engine, settings: Settings, providers: ProviderResolver, catalog: Catalog, layout: SandboxLayout
) -> None:
    """Let the engine prepare for a request that names the first model and leaves everything else default
    (with several keys every caller has a workspace of its own, so there is no common default)."""
    if per_user(settings):
        return
    model = catalog.models[0]
    try:
        policy = resolve_policy(settings, providers, model, XCodex(), layout=layout)
    except ApiError:  # e.g. a remote provider under CODEX_LOCAL_ONLY: such requests are refused anyway
        return
    await engine.prewarm(Turn(model.id, (), policy))


def login_watch(settings: Settings, binary: CodexBinary, env: dict[str, str], codex_home: Path) -> LoginWatch:
    """Asks Codex whether it is logged in; again when the login (an isolated home links the user's) or config.toml
    change."""
    paths = (codex_home / "auth.json", codex_home / "config.toml", settings.user_codex_home / "auth.json")
    workdir, engine = settings.codex_workdir, settings.codex_engine
    return LoginWatch(lambda: read_login(binary, env, workdir, engine), paths, not_logged_in(settings))


def report_sandbox(status: SandboxStatus) -> SandboxStatus:
    if status.works:
        log.info("Codex's sandbox works: %s", status.detail)
    else:
        log.error(status.reason())
    return status


def make_engine(
    settings: Settings,
    binary: CodexBinary,
    env: dict[str, str],
    temp_dir: Path,
    plan: PlanLimits | None = None,
    cgroups: Cgroups | None = None,
    seal: WorkerSeal | None = None,
) -> Engine:
    if settings.codex_engine == "exec":
        return ExecEngine(binary, env, temp_dir, cgroups)
    wait = min(5.0, settings.codex_timeout / 2)  # for a worker to come back; past that a clear 503 beats a hang
    on_notification = plan.on_notification if plan is not None else None
    engine = AppServerEngine(
        binary,
        env,
        settings.codex_workdir,
        settings.codex_app_server_workers,
        wait,
        on_notification,
        settings.codex_rpc_timeout_seconds,
        cgroups,
        seal,
    )
    if plan is not None:
        plan.reader = engine.read_rate_limits
    return engine


def gateway_state(app: FastAPI) -> dict[str, Any]:
    gateway: Gateway | None = getattr(app.state, "gateway", None)
    executor = gateway.executor if gateway else None
    return {
        "waiting": executor.waiting + executor.background_waiting if executor else 0,
        "running": executor.running if executor else 0,
        "background": len(gateway.background.local) if gateway and gateway.background else 0,
        "restarts": executor.engine.restarts() if executor else 0,
        "failures": dict(executor.failures) if executor else {},
        "store_up": gateway.store.up if gateway else True,
        "store_write_failures": gateway.store.write_failures if gateway else 0,
        "rate_limit_storage_errors": gateway.limiter.storage_errors if gateway else 0,
        "plan": executor.plan.metrics() if executor else None,
    }


def setup_logging(level: str) -> None:
    """Plain lines for the gateway's messages; the access log is one bare JSON object per line."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [handler]
    access_log.propagate = False


def create_app(settings: Settings | None = None, engine_factory: EngineFactory | None = None) -> FastAPI:
    """Everything that can stop startup (settings, CODEX_HOME, rate-limit storage, protocol drift) fails here.
    `engine_factory` runs its engine instead of Codex's (in-process tests): then no Codex binary is looked for, so
    nothing asks Codex for its models, its login or its sandbox."""
    settings = settings or load_settings()
    migrate_profile(settings)
    check_layout(settings, codex_home_path(settings), {})  # before anything is written there
    codex_home = prepare_codex_home(settings)
    config = read_config(codex_home)
    check_credentials(config, codex_home)
    providers = ProviderResolver(codex_home, child_environment(settings, codex_home, config))
    check_layout(settings, codex_home, providers.config())  # and config.toml's writable_roots
    check_store_exposure(settings, settings.codex_client_network_access or operator_network(providers))
    prepare_workspaces(settings)
    limiter = RateLimiter(
        settings.rate_limit_per_minute, settings.rate_limit_storage, settings.codex_store_timeout_seconds
    )
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
    if engine_factory is None:
        binary, env, missing = find_codex(settings, providers.codex_env)
    else:
        binary, env, missing = None, providers.codex_env, ""
    store = open_store(settings)
    log.info("response store: %s at %s", store.backend, store.location)
    layout = SandboxLayout.of(settings, codex_home, binary.path if binary else None)
    temp_dir = private_temp_dir(settings)  # here, not in the lifespan: a failure is one line and exit 2
    plan = plan_limits(settings, codex_home, f"{provider.name}@{provider.base_url}")
    cgroups = open_cgroups(settings) if binary is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if binary is not None:
            end_leftovers(binary.path, codex_home)  # before this gateway starts any Codex of its own
            end_leftovers(binary.path, home_view(codex_home))  # of sealed workers (app/policy/worker_seal.py)
        probe = asyncio.create_task(probe_sandbox(binary, env)) if binary is not None else None
        login = login_watch(settings, binary, env, codex_home) if binary is not None else None
        discovering = asyncio.create_task(discover(binary, env, codex_home))
        await asyncio.gather(discovering, *([login.start()] if login else []))
        catalog = discovering.result()
        await store.health()  # an unreachable store is logged now, not at the first request that needs it
        executor, reading = None, None
        engine = engine_factory(settings) if engine_factory is not None else None
        if binary is not None:
            seal = await choose_seal(settings, binary, env, codex_home, layout)
            engine = make_engine(settings, binary, env, temp_dir, plan, cgroups, seal)
        if engine is not None:
            executor = Executor(
                engine,
                max_parallel=settings.codex_max_parallel_requests,
                max_queue=settings.codex_max_queue,
                queue_timeout=settings.codex_queue_timeout_seconds,
                turn_timeout=settings.codex_timeout,
                plan=plan,
            )
            engine = executor.engine
            await engine.start()
            reading = asyncio.create_task(plan.read_at_startup())  # it may go to the backend: not awaited
            await prewarm_defaults(engine, settings, providers, catalog, layout)

            async def after_login() -> None:
                await engine.reload()
                await prewarm_defaults(engine, settings, providers, catalog, layout)

            if login is not None:
                login.on_login = after_login
        images = ImageFetcher.from_settings(settings)
        sandbox = report_sandbox(await probe) if probe is not None else NOT_PROBED
        background = BackgroundRuns(
            store,
            executor,
            settings.instance_id,
            settings.codex_max_background_queue,
            settings.codex_background_timeout or settings.codex_timeout,
        )
        await background.start()
        app.state.gateway = Gateway(
            settings, codex_home, providers, binary, missing, catalog, executor, limiter, store, images, layout,
            sandbox, login, background,
        )  # fmt: skip
        app.state.gateway.schemas.warm()
        try:
            yield
        finally:
            await background.shutdown()  # its runs stored as failed before the executor stops their turns
            app.state.gateway.schemas.close()
            if login is not None:
                await login.close()
            if reading is not None:
                reading.cancel()
            if executor is not None:
                await executor.shutdown()
                await executor.engine.stop()
            if binary is not None:
                end_leftovers(binary.path, codex_home, at_shutdown=True)
                end_leftovers(binary.path, home_view(codex_home), at_shutdown=True)
            await store.close()
            await plan.close()
            shutil.rmtree(temp_dir, ignore_errors=True)
            if cgroups is not None:
                cgroups.close()

    docs = settings.codex_api_docs  # the API's own description, off unless the operator turns it on
    app = FastAPI(
        title="Codex-Wrapper",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_error_handlers(app)
    app.state.metrics = Metrics(lambda: gateway_state(app))
    app.add_middleware(
        BodyLimit, limit=settings.codex_max_request_bytes, timeout=settings.codex_request_read_timeout_seconds
    )
    app.add_middleware(ShutdownAnswer)
    app.add_middleware(HostAllowList, hosts=allowed_hosts(settings))
    app.add_middleware(RequestObserver, metrics=lambda: app.state.metrics)

    @app.exception_handler(ClientGone)
    async def _client_gone(_request: object, _exc: ClientGone) -> Response:
        return Response(status_code=499)

    for module in (health, limits, models, chat, responses):
        app.include_router(module.router)
    return app


def _app_or_exit() -> FastAPI:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"codex-wrapper: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(settings.log_level)
    try:
        return create_app(settings)
    except ConfigError as exc:
        print(f"codex-wrapper: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def __getattr__(name: str) -> FastAPI:
    """`app.main:app`, what uvicorn serves, built from the environment when first asked for: importing this module
    for create_app (in-process tests) starts nothing."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    built = globals()["app"] = _app_or_exit()
    return built
