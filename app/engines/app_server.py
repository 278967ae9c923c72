"""The `app-server` engine: a supervised pool of warm `codex app-server` processes, a thread per turn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from app.codex_cli import CodexBinary, kill_group
from app.engines.modes import BASE_CONFIG, CHAT_BASE_INSTRUCTIONS, CHAT_CONFIG
from app.engines.refusals import refuse
from app.engines.rpc import RpcError, RpcSession, SessionClosed
from app.turn import (
    Completed,
    Failed,
    FailureKind,
    Message,
    ReasoningDelta,
    TextDelta,
    Turn,
    TurnEvent,
    Usage,
    UsageReport,
)

log = logging.getLogger("codex_wrapper")
_LINE_LIMIT = 64 * 1024 * 1024
_HANDSHAKE_TIMEOUT = 30.0
_BACKOFF_START, _BACKOFF_MAX, _STABLE_AFTER = 0.5, 30.0, 30.0
# Unload a thread as soon as its last subscriber leaves. Codex's default delay keeps every finished thread in
# memory for a while: measured, +0.8 MB per request (2 GB after 2000); with 0 the workers stay flat.
WORKER_ARGS = ("app-server", "-c", "thread_unload_delay_secs=0")
CLIENT_INFO = {"name": "codex-wrapper", "title": "Codex-Wrapper", "version": "0.1.0"}

_RATE_LIMIT_INFOS = ("usageLimitExceeded", "rateLimitExceeded")


class PoolUnavailable(Exception):
    """No app-server worker became ready in time."""


def _item(message: Message) -> dict[str, Any]:
    kind = "output_text" if message.role == "assistant" else "input_text"
    parts: list[dict[str, Any]] = [{"type": kind, "text": message.text}] if message.text else []
    parts += [{"type": "input_image", "image_url": url} for url in message.images]
    return {"type": "message", "role": message.role, "content": parts}


def split_conversation(messages: tuple[Message, ...]) -> tuple[list[dict[str, Any]], Message]:
    """The request's instructions and earlier turns as Responses items, and the last user message as input.

    Instructions travel as an injected developer message (not thread/start's developerInstructions), so a thread
    started ahead of the request fits any conversation.
    """
    instructions = "\n\n".join(m.text for m in messages if m.role in ("system", "developer") and m.text)
    turns = [m for m in messages if m.role in ("user", "assistant")]
    last_user = max((i for i, m in enumerate(turns) if m.role == "user"), default=None)
    prompt = turns[last_user] if last_user is not None else Message("user", "")
    items = [_item(Message("developer", instructions))] if instructions else []
    items += [_item(m) for i, m in enumerate(turns) if i != last_user and (m.text or m.images)]
    return items, prompt


def thread_params(turn: Turn) -> dict[str, Any]:
    policy = turn.policy
    config: dict[str, Any] = dict(BASE_CONFIG)
    if policy.network_access is not None:
        config["sandbox_workspace_write.network_access"] = policy.network_access
    if policy.hide_reasoning:
        config["hide_agent_reasoning"] = True
        config["model_reasoning_summary"] = "none"
    params: dict[str, Any] = {
        "model": turn.model,
        "cwd": str(policy.cwd),
        "sandbox": policy.sandbox,
        "approvalPolicy": "never",
        "ephemeral": True,
    }
    if policy.mode == "chat":
        config.update(CHAT_CONFIG)
        params.update(environments=[], dynamicTools=[], baseInstructions=CHAT_BASE_INSTRUCTIONS)
    params["config"] = config
    return params


def turn_params(thread_id: str, prompt: Message, turn: Turn) -> dict[str, Any]:
    user_input: list[dict[str, Any]] = (
        [{"type": "text", "text": prompt.text}] if prompt.text or not prompt.images else []
    )
    user_input += [{"type": "image", "url": url} for url in prompt.images]
    params: dict[str, Any] = {"threadId": thread_id, "input": user_input, "effort": turn.policy.reasoning_effort}
    if turn.output_schema is not None:
        params["outputSchema"] = turn.output_schema
    if turn.policy.hide_reasoning:
        params["summary"] = "none"
    elif turn.policy.reasoning_summary is not None:
        params["summary"] = turn.policy.reasoning_summary
    return params


def failure_kind(error: dict[str, Any] | None) -> FailureKind:
    info = (error or {}).get("codexErrorInfo")
    if info in _RATE_LIMIT_INFOS:
        return FailureKind.RATE_LIMITED
    if isinstance(info, dict):
        for detail in info.values():
            if isinstance(detail, dict) and detail.get("httpStatusCode") == 429:
                return FailureKind.RATE_LIMITED
    return FailureKind.UPSTREAM


def usage_of(params: dict[str, Any]) -> Usage:
    total = (params.get("tokenUsage") or {}).get("total") or {}
    return Usage(
        input_tokens=int(total.get("inputTokens") or 0),
        cached_input_tokens=int(total.get("cachedInputTokens") or 0),
        output_tokens=int(total.get("outputTokens") or 0),
        reasoning_output_tokens=int(total.get("reasoningOutputTokens") or 0),
    )


class TurnTranslator:
    """App-server notifications of one thread → TurnEvents."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.usage = Usage()
        self.error = ""
        self._item: str | None = None  # the agent message the last delta belonged to
        self._streamed: set[str] = set()

    def _text(self, item_id: str, delta: str) -> TextDelta:
        if item_id != self._item and self.text:
            delta = "\n\n" + delta  # a further agent message, as the exec engine joins them
        self._item = item_id
        self._streamed.add(item_id)
        self.text.append(delta)
        return TextDelta(delta)

    def feed(self, message: dict[str, Any]) -> list[TurnEvent]:
        method, params = message.get("method"), message.get("params") or {}
        if method == "item/agentMessage/delta" and params.get("delta"):
            return [self._text(str(params.get("itemId")), params["delta"])]
        if method == "item/reasoning/summaryTextDelta" and params.get("delta"):
            return [ReasoningDelta(params["delta"])]
        if method == "item/completed":
            item = params.get("item") or {}
            if item.get("type") == "agentMessage" and item.get("text") and item.get("id") not in self._streamed:
                return [self._text(str(item.get("id")), item["text"])]
        elif method == "thread/tokenUsage/updated":
            self.usage = usage_of(params)
        elif method == "error" and not params.get("willRetry"):
            self.error = str((params.get("error") or {}).get("message") or "")
        elif method == "turn/completed":
            return self._completed(params.get("turn") or {})
        return []

    def _completed(self, turn: dict[str, Any]) -> list[TurnEvent]:
        status = turn.get("status")
        if status == "completed":
            return [UsageReport(self.usage), Completed("".join(self.text))]
        error = turn.get("error") or {}
        message = error.get("message") or self.error or f"the turn ended as {status}"
        if status == "interrupted":
            return [Failed(FailureKind.CRASHED, f"Codex interrupted the turn: {message}")]
        return [Failed(failure_kind(error), message)]


class Worker:
    """One `codex app-server` process and its session."""

    def __init__(self, index: int, binary: CodexBinary, env: dict[str, str], cwd: Path) -> None:
        self.index = index
        self.binary = binary
        self.env = env
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.session: RpcSession | None = None
        self.ready = asyncio.Event()
        self.settled = asyncio.Event()  # its first start has succeeded or failed
        self.active = 0
        self.last_error = ""
        self.stderr_tail = b""
        self._stderr_task: asyncio.Task[None] | None = None

    async def spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            str(self.binary.path),
            *WORKER_ARGS,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=str(self.cwd),
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.stderr_tail = b""
        self._stderr_task = asyncio.create_task(self._keep_stderr(self.process.stderr))
        self.session = RpcSession(self.process.stdout, self.process.stdin, refuse)
        self.session.start()
        try:
            await asyncio.wait_for(
                self.session.request(
                    "initialize", {"clientInfo": CLIENT_INFO, "capabilities": {"experimentalApi": True}}
                ),
                _HANDSHAKE_TIMEOUT,
            )
            await self.session.notify("initialized")
        except BaseException:
            await self.terminate()
            raise

    async def _keep_stderr(self, stream: asyncio.StreamReader | None) -> None:
        """The last lines Codex wrote to stderr, to say why a worker died."""
        while stream is not None and (chunk := await stream.read(65536)):
            self.stderr_tail = (self.stderr_tail + chunk)[-2000:]

    def last_words(self) -> str:
        lines = self.stderr_tail.decode(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else ""

    async def exited(self) -> int | None:
        assert self.process is not None and self.session is not None
        await self.session.closed.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 5)
        return self.process.returncode

    async def terminate(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.process is None:
            return
        kill_group(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 3)
        except TimeoutError:
            kill_group(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        kill_group(self.process.pid, signal.SIGKILL)


class AppServerPool:
    """`size` workers, each restarted with backoff when it dies."""

    def __init__(self, binary: CodexBinary, env: dict[str, str], cwd: Path, size: int) -> None:
        self.workers = [Worker(i, binary, env, cwd) for i in range(size)]
        self.restarts = 0
        self._stopping = False
        self._supervisors: list[asyncio.Task[None]] = []

    async def start(self, wait: float = _HANDSHAKE_TIMEOUT) -> None:
        """Start every worker; return once each has started or failed its first start (a readiness gate)."""
        self._supervisors = [asyncio.create_task(self._supervise(w)) for w in self.workers]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(w.settled.wait() for w in self.workers)), wait)

    def healthy(self) -> int:
        return sum(worker.ready.is_set() for worker in self.workers)

    def status(self) -> str:
        errors = [f"worker {w.index}: {w.last_error}" for w in self.workers if w.last_error and not w.ready.is_set()]
        return f"{self.healthy()}/{len(self.workers)} app-server workers ready" + (
            f" ({'; '.join(errors)})" if errors else ""
        )

    async def acquire(self, wait: float) -> Worker:
        """The ready worker with the fewest turns; waits up to `wait` seconds for one."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            ready = [w for w in self.workers if w.ready.is_set()]
            if ready:
                return min(ready, key=lambda w: w.active)
            if asyncio.get_running_loop().time() >= deadline:
                raise PoolUnavailable(self.status())
            await asyncio.sleep(0.05)

    async def _supervise(self, worker: Worker) -> None:
        backoff = _BACKOFF_START
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                await worker.spawn()
            except (OSError, TimeoutError, SessionClosed, RpcError) as exc:
                words = worker.last_words()
                worker.last_error = f"cannot start codex app-server: {exc}" + (f" ({words})" if words else "")
                worker.settled.set()
                log.warning("app-server worker %d: %s", worker.index, worker.last_error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            started = loop.time()
            worker.last_error = ""
            worker.ready.set()
            worker.settled.set()
            code = await worker.exited()
            worker.ready.clear()
            if self._stopping:
                return
            self.restarts += 1
            words = worker.last_words()
            worker.last_error = f"exited with status {code}" + (f": {words}" if words else "")
            log.warning("app-server worker %d %s; restarting", worker.index, worker.last_error)
            await worker.terminate()  # the rest of its process group
            if loop.time() - started > _STABLE_AFTER:
                backoff = _BACKOFF_START
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        await asyncio.gather(*(w.terminate() for w in self.workers), return_exceptions=True)


class SpareThreads:
    """Threads started ahead of requests, `depth` per (worker session, thread parameters), so a request skips
    thread/start; two deep, so back-to-back requests still find one while its successor starts. The most
    recent `max_shapes` parameter sets are kept; older spares are released."""

    def __init__(self, depth: int = 2, max_shapes: int = 16) -> None:
        self.depth = depth
        self.max_shapes = max_shapes
        self._spares: dict[tuple[int, str], list[str]] = {}
        self._sessions: dict[tuple[int, str], RpcSession] = {}
        self._starting: dict[tuple[int, str], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(session: RpcSession, params: dict[str, Any]) -> tuple[int, str]:
        return id(session), json.dumps(params, sort_keys=True)

    def take(self, session: RpcSession, params: dict[str, Any]) -> str | None:
        """A ready thread for these parameters, or None; `fill` starts successors once the turn is over."""
        key = self.key(session, params)
        if self._sessions.get(key) not in (None, session):  # a dead worker's spares under a recycled id
            self._spares.pop(key, None)
            self._sessions.pop(key, None)
        spares = self._spares.get(key)
        if not spares or session.closed.is_set():
            self.misses += 1
            return None
        self._spares[key] = self._spares.pop(key)  # most recently used last: evicted last
        self.hits += 1
        return spares.pop()

    def fill(self, session: RpcSession, params: dict[str, Any]) -> None:
        """Start threads until `depth` are ready or starting for these parameters."""
        key = self.key(session, params)
        if session.closed.is_set():
            return
        missing = self.depth - len(self._spares.get(key, ())) - self._starting.get(key, 0)
        for _ in range(missing):
            self._starting[key] = self._starting.get(key, 0) + 1
            task = asyncio.create_task(self._start(session, params, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start(self, session: RpcSession, params: dict[str, Any], key: tuple[int, str]) -> None:
        try:
            thread = await session.request("thread/start", params)
        except (SessionClosed, RpcError) as exc:
            log.debug("spare thread not started: %s", exc)
            return
        finally:
            self._starting[key] -= 1
        self._sessions[key] = session
        self._spares.setdefault(key, []).append(str(thread["thread"]["id"]))
        await self._forget_oldest()

    async def _forget_oldest(self) -> None:
        while len(self._spares) > self.max_shapes:
            oldest = next(iter(self._spares))
            session = self._sessions.pop(oldest)
            for thread_id in self._spares.pop(oldest):
                with contextlib.suppress(SessionClosed, RpcError):
                    await session.request("thread/unsubscribe", {"threadId": thread_id})

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class AppServerEngine:
    name = "app-server"

    def __init__(self, binary: CodexBinary, env: dict[str, str], cwd: Path, workers: int, wait: float) -> None:
        self.pool = AppServerPool(binary, env, cwd, workers)
        self.wait = wait
        self.spares = SpareThreads()
        self._cleanups: set[asyncio.Task[None]] = set()

    async def prewarm(self, turn: Turn) -> None:
        """Start a spare thread on every ready worker for requests shaped like `turn` (the server defaults)."""
        params = thread_params(turn)
        for worker in self.pool.workers:
            if worker.ready.is_set() and worker.session is not None:
                self.spares.fill(worker.session, params)

    async def start(self) -> None:
        await self.pool.start()

    async def stop(self) -> None:
        await self.spares.stop()
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        await self.pool.stop()

    def status(self) -> str:
        return f"{self.pool.status()}; spare threads used {self.spares.hits}, missed {self.spares.misses}"

    def ready(self) -> bool:
        return self.pool.healthy() > 0

    async def run(self, turn: Turn) -> AsyncIterator[TurnEvent]:
        try:
            worker = await self.pool.acquire(self.wait)
        except PoolUnavailable as exc:
            yield Failed(FailureKind.UNAVAILABLE, str(exc))
            return
        session = worker.session
        assert session is not None
        worker.active += 1
        thread_id: str | None = None
        turn_id: str | None = None
        finished = False
        try:
            params = thread_params(turn)
            thread_id = self.spares.take(session, params)
            if thread_id is None:
                thread_id = str((await session.request("thread/start", params))["thread"]["id"])
            queue = session.subscribe(thread_id)
            history, prompt = split_conversation(turn.messages)
            if history:
                await session.request("thread/inject_items", {"threadId": thread_id, "items": history})
            started = await session.request("turn/start", turn_params(thread_id, prompt, turn))
            turn_id = str((started.get("turn") or {}).get("id") or "") or None
            translator = TurnTranslator()
            while not finished:
                message = await queue.get()
                if message is None:
                    raise SessionClosed("the app-server exited")
                for event in translator.feed(message):
                    finished = isinstance(event, (Completed, Failed))
                    yield event
        except SessionClosed:
            finished = True
            yield Failed(FailureKind.CRASHED, "The Codex app-server process exited during the turn.")
        except RpcError as exc:
            finished = True
            yield Failed(FailureKind.CRASHED, f"Codex refused the turn: {exc}")
        finally:
            worker.active -= 1
            if thread_id is not None:
                session.unsubscribe(thread_id)
                self.spares.fill(session, params)  # after the turn, not beside it: two cores are few
                task = asyncio.create_task(self._release(session, thread_id, None if finished else turn_id))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)

    @staticmethod
    async def _release(session: RpcSession, thread_id: str, interrupt_turn: str | None) -> None:
        """Interrupt an unfinished turn, then let the app-server unload the thread."""
        with contextlib.suppress(SessionClosed, RpcError, TimeoutError):
            if interrupt_turn is not None:
                await asyncio.wait_for(
                    session.request("turn/interrupt", {"threadId": thread_id, "turnId": interrupt_turn}), 5
                )
            await asyncio.wait_for(session.request("thread/unsubscribe", {"threadId": thread_id}), 5)
