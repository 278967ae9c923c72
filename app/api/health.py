"""GET /health (liveness), GET /ready (Codex found and answering; in agent mode, its sandbox working; logged in
when its model provider needs a login), GET /metrics.

Without a valid API key (when PROXY_API_KEY is set), /ready says only ready or not, and /metrics answers 401 while
CODEX_METRICS_REQUIRE_KEY is on: versions, worker states and counts are for key holders.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.auth import check_api_key
from app.codex.login import Login
from app.errors import ApiError
from app.gateway import gateway_of

router = APIRouter()


SERVICE = "codex-wrapper"  # in /health, so `doctor` knows its own gateway on a busy port


@router.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok", "service": SERVICE}


def key_holder(request: Request) -> bool:
    try:
        check_api_key(request, gateway_of(request).settings.api_keys)
    except ApiError:
        return False
    return True


def _answer(status: str, reason: str | None, details: dict[str, Any] | None, code: int | None = None) -> JSONResponse:
    """The status for everyone; why and the state of the parts only for a key holder (`details` is None otherwise)."""
    body: dict[str, Any] = {"status": status}
    if details is not None:
        body.update({"reason": reason} if reason else {}, **details)
    return JSONResponse(body, status_code=code or (503 if status == "unavailable" else 200))


def describe(login: Login) -> str:
    if login.error:
        return f"unknown ({login.error})"
    if not login.needed:
        return "not needed by the model provider"
    return f"{login.account} account" if login.account else "none"


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """503 when this instance cannot run Codex, or Codex lacks the login its provider needs (`degraded`, as
    /v1/models and stored responses still answer); a store outage is `degraded` with 200: the store is shared by
    every instance, so taking them all out of a load balancer would also stop what still works (chat, store:false)."""
    gateway = gateway_of(request)
    health = await gateway.store.health()
    shown = key_holder(request)
    details: dict[str, Any] = {"store": {"backend": health.backend, "state": health.state}}
    binary, executor = gateway.binary, gateway.executor
    if binary is None or executor is None or not binary.path.exists():
        reason = gateway.missing_reason or f"{binary.path if binary else 'codex'} is gone"
        return _answer("unavailable", reason, details if shown else None)
    engine, settings, sandbox = executor.engine, gateway.settings, gateway.sandbox
    details = {
        "codex_version": binary.version,
        "engine": engine.name,
        "detail": engine.status(),
        "sandbox": sandbox.detail if sandbox.works else f"not working: {sandbox.detail}",
        **details,
    }
    if not engine.ready():
        return _answer("unavailable", engine.status(), details if shown else None)
    if sandbox.refuses(settings.codex_mode, settings.codex_sandbox_mode):  # the default turn would be refused
        return _answer("unavailable", sandbox.reason(), details if shown else None)
    if gateway.login is not None:
        login = await gateway.login.current()
        details["login"] = describe(login)
        if login.missing:  # 503: no request can be served, and compose holds OpenWebUI back (its health check)
            return _answer("degraded", gateway.login.message, details if shown else None, 503)
    return _answer("ready" if health.state == "ok" else "degraded", None, details if shown else None)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format (counts and timings only, no request content); a key when CODEX_METRICS_REQUIRE_KEY."""
    gateway = gateway_of(request)
    if gateway.settings.codex_metrics_require_key:
        check_api_key(request, gateway.settings.api_keys)
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
