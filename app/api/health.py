"""GET /health (liveness) and GET /ready (Codex found and answering; in agent mode, its sandbox working)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.gateway import gateway_of

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """503 when this instance cannot run Codex; a store outage is `degraded` with 200: the store is shared by
    every instance, so taking them all out of a load balancer would also stop what still works (chat, store:false)."""
    gateway = gateway_of(request)
    health = await gateway.store.health()
    store = {"backend": health.backend, "state": health.state}
    binary, executor = gateway.binary, gateway.executor
    if binary is None or executor is None or not binary.path.exists():
        reason = gateway.missing_reason or f"{binary.path if binary else 'codex'} is gone"
        return JSONResponse({"status": "unavailable", "reason": reason, "store": store}, status_code=503)
    engine, settings, sandbox = executor.engine, gateway.settings, gateway.sandbox
    body = {
        "codex_version": binary.version,
        "engine": engine.name,
        "detail": engine.status(),
        "sandbox": sandbox.detail if sandbox.works else f"not working: {sandbox.detail}",
        "store": store,
    }
    if not engine.ready():
        return JSONResponse({"status": "unavailable", "reason": engine.status(), **body}, status_code=503)
    if sandbox.refuses(settings.codex_mode, settings.codex_sandbox_mode):  # the default turn would be refused
        return JSONResponse({"status": "unavailable", "reason": sandbox.reason(), **body}, status_code=503)
    return JSONResponse({"status": "ready" if health.state == "ok" else "degraded", **body})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format; open like /health (counts and timings only, no request content)."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
