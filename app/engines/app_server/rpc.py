"""A JSON-RPC session over a Codex app-server's stdio: newline-delimited JSON without a "jsonrpc" key.

Requests from us get futures, each with its own time limit: a request not answered in time raises RpcTimeout and
calls `on_stall` (the pool then checks the worker and replaces it if it has stopped answering). A request whose text
is not Unicode (a lone surrogate) is refused here: Codex drops such a line without an answer.

Notifications go to the queue of the thread they name (or are dropped).
Requests from the server are answered at once by `on_server_request` (the engine declines them all), except
the methods a thread's subscriber takes itself (client tool calls): those go to its queue, and whatever is
still unanswered when it unsubscribes gets `on_server_request`'s answer then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Collection
from typing import Any

log = logging.getLogger("codex_wrapper")
_LINE_LIMIT = 64 * 1024 * 1024

DEFAULT_TIMEOUT = 30.0

ServerRequestHandler = Callable[[str, dict[str, Any]], dict[str, Any]]
NotificationHandler = Callable[[dict[str, Any]], None]


class RpcError(Exception):
    """The server answered a request with an error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('message', error)}")
        self.error = error


class RpcTimeout(RpcError):
    """The server did not answer a request within its time limit."""

    def __init__(self, method: str, timeout: float) -> None:
        super().__init__(method, {"message": f"no answer within {timeout:g} s"})
        self.method = method
        self.timeout = timeout


class SessionClosed(Exception):
    """The app-server's stdout ended: the process is gone."""


class RpcSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_server_request: ServerRequestHandler,
        on_notification: NotificationHandler | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        on_stall: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.on_stall = on_stall
        self._reader = reader
        self._writer = writer
        self._on_server_request = on_server_request
        self._on_notification = on_notification  # notifications of no thread (account/rateLimits/updated)
        self._next_id = 0
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._threads: dict[str, asyncio.Queue[dict[str, Any] | None]] = {}
        self._routes: dict[str, frozenset[str]] = {}  # thread → server request methods its subscriber answers
        self._unanswered: dict[str, dict[Any, tuple[str, dict[str, Any]]]] = {}  # thread → routed requests
        self._answers: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._read_loop())

    async def request(self, method: str, params: dict[str, Any], timeout: float | None = None) -> Any:
        """The server's result; RpcError for its error answer, RpcTimeout after `timeout` (default: the session's)
        seconds without one, SessionClosed when the process is gone."""
        if self.closed.is_set():
            raise SessionClosed("the app-server is not running")
        self._next_id += 1
        request_id = self._next_id
        try:
            line = _line({"id": request_id, "method": method, "params": params})
        except UnicodeEncodeError:
            raise RpcError(method, {"message": "the request holds text that is not Unicode; it was not sent"}) from None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        limit = self.timeout if timeout is None else timeout
        try:
            await self._write(line)
            try:
                return await asyncio.wait_for(future, limit)
            except TimeoutError:
                if self.on_stall is not None:
                    self.on_stall(method)
                raise RpcTimeout(method, limit) from None
        finally:
            self._pending.pop(request_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # the process died while we wrote: our own error is raised, not this one

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    def subscribe(self, thread_id: str, requests: Collection[str] = ()) -> asyncio.Queue[dict[str, Any] | None]:
        """The queue of this thread's notifications, and of its server requests of the `requests` methods (the
        subscriber answers those with `respond`); None in it means the session closed."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._threads[thread_id] = queue
        self._routes[thread_id] = frozenset(requests)
        self._unanswered[thread_id] = {}
        return queue

    def unsubscribe(self, thread_id: str) -> None:
        """Stop routing this thread; its routed requests still unanswered get `on_server_request`'s answer."""
        self._threads.pop(thread_id, None)
        self._routes.pop(thread_id, None)
        for request_id, (method, params) in self._unanswered.pop(thread_id, {}).items():
            task = asyncio.get_running_loop().create_task(self._answer(request_id, method, params))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    async def respond(self, thread_id: str, request_id: Any, result: dict[str, Any]) -> None:
        """Answer a server request routed to this thread's subscriber."""
        if self._unanswered.get(thread_id, {}).pop(request_id, None) is not None:
            with contextlib.suppress(SessionClosed):
                await self._send({"id": request_id, "result": result})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all("the app-server session was closed")

    async def _send(self, message: dict[str, Any]) -> None:
        """Write a notification or an answer; text that is not Unicode becomes "?" (the server would drop it)."""
        try:
            line = _line(message)
        except UnicodeEncodeError:
            line = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
        await self._write(line)

    async def _write(self, line: bytes) -> None:
        try:
            self._writer.write(line + b"\n")
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise SessionClosed(f"cannot write to the app-server: {exc}") from None

    async def _read_loop(self) -> None:
        try:
            while line := await self._next_line():
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("app-server printed a non-JSON line: %r", line[:200])
                    continue
                if isinstance(message, dict):
                    await self._dispatch(message)
        except ConnectionError as exc:
            log.warning("app-server stream failed: %s", exc)
        finally:
            self._fail_all("the app-server exited")

    async def _next_line(self) -> bytes:
        """The next line; one beyond the reader's limit is skipped whole (one message lost, not the session and
        every turn on it). b"" at the end of the stream."""
        while True:
            try:
                return await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return exc.partial
            except asyncio.LimitOverrunError as exc:
                log.warning("app-server sent a line beyond %d bytes; skipped", _LINE_LIMIT)
                try:
                    await self._skip_line(exc.consumed)
                except asyncio.IncompleteReadError:
                    return b""

    async def _skip_line(self, held: int) -> None:
        while True:
            await self._reader.readexactly(held)
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                held = exc.consumed

    async def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if "id" in message and method is None:
            entry = self._pending.get(message["id"])
            if entry is not None and not entry[1].done():
                name, future = entry
                if "error" in message:
                    future.set_exception(RpcError(name, message["error"] or {}))
                else:
                    future.set_result(message.get("result"))
            return
        params = message.get("params") or {}
        thread_id = params.get("threadId") if isinstance(params, dict) else None
        thread = thread_id if isinstance(thread_id, str) else ""
        queue = self._threads.get(thread)
        if "id" in message:  # a request from the server: its thread's subscriber answers it, or we do now
            if queue is not None and method in self._routes.get(thread, ()):
                self._unanswered[thread][message["id"]] = (str(method), params)
                queue.put_nowait(message)
            else:
                await self._answer(message["id"], str(method), params)
            return
        if queue is not None:
            queue.put_nowait(message)
        elif not thread and self._on_notification is not None:
            try:
                self._on_notification(message)
            except Exception:  # a handler bug must not end the session
                log.exception("notification handler failed on %s", method)

    async def _answer(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        try:
            reply: dict[str, Any] = {"id": request_id, "result": self._on_server_request(method, params)}
        except Exception as exc:  # no result for it (or a handler bug): the server still gets an answer
            code = -32601 if isinstance(exc, LookupError) else -32603  # method not served / internal error
            reply = {"id": request_id, "error": {"code": code, "message": str(exc)}}
        with contextlib.suppress(SessionClosed):
            await self._send(reply)

    def _fail_all(self, reason: str) -> None:
        self.closed.set()
        for _, future in list(self._pending.values()):
            if not future.done():
                future.set_exception(SessionClosed(reason))
        self._pending.clear()
        for queue in self._threads.values():
            queue.put_nowait(None)


def _line(message: dict[str, Any]) -> bytes:
    """A message as one line of UTF-8 JSON; UnicodeEncodeError for text that is not Unicode (a lone surrogate)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
