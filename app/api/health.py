"""GET /health (liveness), GET /ready (Codex found and answering), GET /metrics.

Without a valid API key (when PROXY_API_KEY is set), /ready says only ready or not, and /metrics answers 401 while
CODEX_METRICS_REQUIRE_KEY is on: versions, worker states and counts are for key holders.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.auth import check_api_key
from app.errors import ApiError
from app.gateway import gateway_of

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok"}


def key_holder(request: Request) -> bool:
    try:
        check_api_key(request, gateway_of(request).settings.api_keys)
    except ApiError:
        return False
    return True


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    gateway = gateway_of(request)
    binary, executor = gateway.binary, gateway.executor
    details = key_holder(request)
    if binary is None or executor is None or not binary.path.exists():
        reason = gateway.missing_reason or f"{binary.path if binary else 'codex'} is gone"
        return JSONResponse({"status": "unavailable", **({"reason": reason} if details else {})}, status_code=503)
    engine = executor.engine
    body = {"codex_version": binary.version, "engine": engine.name, "detail": engine.status()} if details else {}
    if not engine.ready():
        reason = {"reason": engine.status()} if details else {}
        return JSONResponse({"status": "unavailable", **reason, **body}, status_code=503)
    return JSONResponse({"status": "ready", **body})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format (counts and timings only, no request content); a key when CODEX_METRICS_REQUIRE_KEY."""
    gateway = gateway_of(request)
    if gateway.settings.codex_metrics_require_key:
        check_api_key(request, gateway.settings.api_keys)
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
