"""An answer in the OpenAI envelope sent straight from an ASGI middleware (outside FastAPI's handlers)."""

from __future__ import annotations

import json

from starlette.types import Send

from app.errors import ApiError


async def send_error(send: Send, error: ApiError) -> None:
    """Answer with `error` in the OpenAI envelope, from a middleware (outside FastAPI's handlers)."""
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
