"""GET /limits: the ChatGPT plan's windows Codex last reported (app/codex/plan_limits.py); a key when PROXY_API_KEY."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.auth import check_api_key
from app.codex.plan_limits import describe
from app.errors import ApiError
from app.gateway import gateway_of

router = APIRouter()


@router.get("/limits")
async def limits(request: Request) -> dict[str, Any]:
    """200 with `known: false` until something is known; account/rateLimits/read at most once a minute."""
    gateway = gateway_of(request)
    check_api_key(request, gateway.settings.api_keys)
    executor = gateway.executor
    if executor is None:
        raise ApiError(503, f"Codex is not available: {gateway.missing_reason}", code="codex_unavailable")
    plan = executor.plan
    await plan.refresh()
    snapshot = await plan.current()
    return describe(snapshot, plan.clock(), plan.read_note)
