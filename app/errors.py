"""The OpenAI error envelope and the mapping of failures to HTTP statuses."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("codex_wrapper")


class BodyTooLarge(Exception):
    """A request body beyond CODEX_MAX_REQUEST_BYTES (raised while it is read)."""


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    431: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class ApiError(Exception):
    """An error answered as `{"error": {message, type, param, code}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _validation_error(exc: RequestValidationError) -> ApiError:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return invalid("The request body is not valid JSON.", code="invalid_json")
    message = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        return invalid(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if first.get("type") == "extra_forbidden":
        return invalid(f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter")
    return invalid(f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = "Not found." if exc.status_code == 404 else str(exc.detail)
        return ApiError(exc.status_code, message, code=code).response()

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return ApiError(413, str(exc), code="request_too_large").response()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return ApiError(500, "Internal error in the gateway.", code="internal_error").response()


def failure_error(kind: str, message: str, retry_at: float | None = None, now: float | None = None) -> ApiError:
    """The API error for a failed turn (see turn.FailureKind); `retry_at` (Unix seconds) sets Retry-After."""
    if kind == "usage_limit":
        now = time.time() if now is None else now
        seconds = max(1, math.ceil(retry_at - now)) if retry_at is not None else 60
        return ApiError(429, message, code="usage_limit_reached", headers={"Retry-After": str(seconds)})
    if kind == "rate_limited":
        return ApiError(429, f"The model provider refused: {message}", code="upstream_rate_limited")
    if kind == "timeout":
        return ApiError(504, message, code="timeout")
    if kind == "unavailable":
        return ApiError(503, f"Codex is not available: {message}", code="codex_unavailable")
    if kind == "crashed":
        return ApiError(502, message, code="codex_failed")
    if kind == "broken_contract":
        return ApiError(502, message, code="tool_call_not_honoured")
    return ApiError(502, f"The model provider failed: {message}", code="upstream_error")
