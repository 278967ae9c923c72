"""Invalid text in a request body is a 400 naming the field, before anything else reads the body.

Python's JSON parser takes `"\\ud800"` (a lone UTF-16 surrogate) as a string, but it is not Unicode text: Codex's
parser drops the whole JSON-RPC line that carries it and never answers (the request held a worker slot until
CODEX_TIMEOUT), paths built from it fail with a 500, and it cannot be written out as UTF-8. Bytes that are not UTF-8
are refused the same way. Every route that takes a JSON body uses TextCheckedRoute: it parses the body once (FastAPI
reuses the parsed value) and walks it, keys included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.errors import invalid

_SURROGATE = re.compile("[\ud800-\udfff]")
# What a lone surrogate looks like in a JSON body: an escape of one, or its raw bytes (which json.loads lets through).
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _shown(key: str) -> str:
    """A key as it can be printed in an error (escapes for what is not text)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


Trail = tuple[str, "Trail"] | None  # a path, innermost segment first, built only when it is reported


def _path(trail: Trail) -> str:
    segments: list[str] = []
    while trail is not None:
        segments.append(trail[0])
        trail = trail[1]
    return "".join(reversed(segments)).removeprefix(".")


def bad_text_at(value: Any) -> str | None:
    """Where the first string or key holding a lone surrogate is ("messages[0].content"), "" for the body itself;
    None when all the text is valid. Iterative: the depth of a body does not matter."""
    todo: list[tuple[Trail, Any]] = [(None, value)]
    while todo:
        trail, item = todo.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return _path(trail)
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                where: Trail = ("." + _shown(key), trail)
                if not key.isascii() and _SURROGATE.search(key):
                    return _path(where)
                todo.append((where, child))
        elif isinstance(item, list):
            todo.extend(((f"[{index}]", trail), child) for index, child in reversed(list(enumerate(item))))
    return None


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return not kind or kind == "application/json" or kind.endswith("+json")


async def check_body_text(request: Request) -> None:
    """400 `invalid_text` for a JSON body that is not UTF-8 or holds a lone surrogate; anything else that is wrong
    with the body (not JSON at all, say) is left to FastAPI's own answer."""
    if request.method not in ("POST", "PUT", "PATCH") or not _is_json(request):
        return
    body = await request.body()
    if not body:
        return
    try:
        data = await request.json()  # kept on the request: FastAPI does not parse it again
    except UnicodeDecodeError as exc:
        raise invalid(
            f"The request body is not UTF-8 text (byte {exc.start}).", param=None, code="invalid_text"
        ) from None
    except (ValueError, RecursionError):
        return
    if not _MAYBE_SURROGATE.search(body):
        return
    where = bad_text_at(data)
    if where is not None:
        field = f"'{where}'" if where else "the request body"
        message = f"Invalid text in {field}: it holds a lone UTF-16 surrogate (such as \\ud800), which is not Unicode."
        raise invalid(message, param=where or None, code="invalid_text")


class TextCheckedRoute(APIRoute):
    """An APIRoute that refuses invalid text in its JSON body (see check_body_text) before FastAPI validates it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            await check_body_text(request)
            return await handler(request)

        return checked
