"""The OpenAI error envelope and the mapping of failures to HTTP statuses (FastAPI's handlers that answer with it:
app/api/errors.py)."""

from __future__ import annotations

import math
import time
from typing import Any

from app.turn import FailureKind


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


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def failure_error(kind: FailureKind, message: str, retry_at: float | None = None, now: float | None = None) -> ApiError:
    """The API error for a failed turn; `retry_at` (Unix seconds) sets Retry-After."""
    if kind is FailureKind.USAGE_LIMIT:
        now = time.time() if now is None else now
        seconds = max(1, math.ceil(retry_at - now)) if retry_at is not None else 60
        return ApiError(429, message, code="usage_limit_reached", headers={"Retry-After": str(seconds)})
    if kind is FailureKind.RATE_LIMITED:
        return ApiError(429, f"The model provider refused: {message}", code="upstream_rate_limited")
    if kind is FailureKind.TIMEOUT:
        return ApiError(504, message, code="timeout")
    if kind is FailureKind.UNAVAILABLE:
        return ApiError(503, f"Codex is not available: {message}", code="codex_unavailable")
    if kind is FailureKind.CRASHED:
        return ApiError(502, message, code="codex_failed")
    if kind is FailureKind.BROKEN_CONTRACT:
        return ApiError(502, message, code="tool_call_not_honoured")
    return ApiError(502, f"The model provider failed: {message}", code="upstream_error")
