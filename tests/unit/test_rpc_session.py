"""The JSON-RPC session against a fake stdio peer (pure protocol logic: no Codex here)."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import pytest

from app.codex_cli import CodexBinary
from app.engines.app_server_pool import Worker
from app.engines.refusals import refuse
from app.engines.rpc import RpcError, RpcSession, SessionClosed


class FakePeer:
    """The server side of the pipe: reads what the session writes, writes what a test scripts."""

    def __init__(self) -> None:
        self.to_session = asyncio.StreamReader()
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def writer(self) -> Any:
        peer = self

        class Writer:
            def write(self, data: bytes) -> None:
                for line in data.splitlines():
                    peer.sent.put_nowait(json.loads(line))

            async def drain(self) -> None:
                return None

        return Writer()

    def say(self, message: dict[str, Any]) -> None:
        self.to_session.feed_data(json.dumps(message).encode() + b"\n")

    def hang_up(self) -> None:
        self.to_session.feed_eof()


@pytest.fixture
async def pair() -> tuple[RpcSession, FakePeer]:
    peer = FakePeer()
    session = RpcSession(peer.to_session, peer.writer(), refuse)
    session.start()
    return session, peer


async def test_a_request_gets_its_own_answer(pair: tuple[RpcSession, FakePeer]) -> None:
    session, peer = pair
    first = asyncio.create_task(session.request("thread/start", {"model": "m"}))
    second = asyncio.create_task(session.request("model/list", {}))
    one, two = await peer.sent.get(), await peer.sent.get()
    assert one == {"id": 1, "method": "thread/start", "params": {"model": "m"}} and "jsonrpc" not in one
    peer.say({"id": two["id"], "result": {"data": []}})
    peer.say({"id": one["id"], "result": {"thread": {"id": "t1"}}})
    assert await first == {"thread": {"id": "t1"}}
    assert await second == {"data": []}


async def test_an_error_answer_raises(pair: tuple[RpcSession, FakePeer]) -> None:
    session, peer = pair
    pending = asyncio.create_task(session.request("turn/start", {}))
    sent = await peer.sent.get()
    peer.say({"id": sent["id"], "error": {"code": -32600, "message": "bad turn"}})
    with pytest.raises(RpcError, match="turn/start: bad turn"):
        await pending


async def test_notifications_reach_their_thread_only(pair: tuple[RpcSession, FakePeer]) -> None:
    session, peer = pair
    mine = session.subscribe("t1")
    peer.say({"method": "item/agentMessage/delta", "params": {"threadId": "t2", "delta": "other"}})
    peer.say({"method": "account/rateLimits/updated", "params": {}})
    peer.say({"method": "item/agentMessage/delta", "params": {"threadId": "t1", "delta": "mine"}})
    message = await asyncio.wait_for(mine.get(), 1)
    assert message["params"]["delta"] == "mine" and mine.empty()


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("item/commandExecution/requestApproval", {"decision": "decline"}),
        ("item/fileChange/requestApproval", {"decision": "decline"}),
        ("item/tool/requestUserInput", {"answers": {}}),
        ("mcpServer/elicitation/request", {"action": "decline"}),
        ("execCommandApproval", {"decision": "denied"}),
    ],
)
async def test_server_requests_are_refused_at_once(
    pair: tuple[RpcSession, FakePeer], method: str, answer: dict
) -> None:
    _, peer = pair
    peer.say({"id": "srv-1", "method": method, "params": {"threadId": "t1"}})
    assert await asyncio.wait_for(peer.sent.get(), 1) == {"id": "srv-1", "result": answer}


async def test_unknown_server_requests_still_get_an_answer(pair: tuple[RpcSession, FakePeer]) -> None:
    _, peer = pair
    peer.say({"id": 7, "method": "account/chatgptAuthTokens/refresh", "params": {}})
    reply = await asyncio.wait_for(peer.sent.get(), 1)
    assert reply["id"] == 7 and "not available" in reply["error"]["message"]


async def test_server_exit_fails_pending_requests_and_wakes_threads(pair: tuple[RpcSession, FakePeer]) -> None:
    session, peer = pair
    queue = session.subscribe("t1")
    pending = asyncio.create_task(session.request("turn/start", {}))
    await peer.sent.get()
    peer.hang_up()
    with pytest.raises(SessionClosed):
        await pending
    assert await asyncio.wait_for(queue.get(), 1) is None
    with pytest.raises(SessionClosed):
        await session.request("thread/start", {})


async def test_garbage_lines_are_skipped(pair: tuple[RpcSession, FakePeer]) -> None:
    session, peer = pair
    pending = asyncio.create_task(session.request("initialize", {}))
    sent = await peer.sent.get()
    peer.to_session.feed_data(b"not json\n[1, 2]\n")
    peer.say({"id": sent["id"], "result": {"ok": True}})
    assert await pending == {"ok": True}


async def test_a_process_dead_before_the_handshake_leaves_no_unretrieved_error() -> None:
    """A worker that dies at startup: the write fails while the reader sees the end. One error is raised, and
    nothing is left for asyncio to log later ("Future exception was never retrieved"). A real process: the pipes
    are the point."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        for delay in (0.0, 0.05, 0.2):  # the handshake before and after the process has gone
            pipe = asyncio.subprocess.PIPE
            process = await asyncio.create_subprocess_exec("/bin/true", stdin=pipe, stdout=pipe)
            await asyncio.sleep(delay)
            assert process.stdin is not None and process.stdout is not None
            session = RpcSession(process.stdout, process.stdin, refuse)
            session.start()
            with pytest.raises(SessionClosed):
                await session.request("initialize", {})
            await session.close()
            await process.wait()
        worker = Worker(0, CodexBinary(Path("/bin/true"), {}), {"PATH": "/usr/bin:/bin"}, Path("/"))
        with pytest.raises(SessionClosed):
            await worker.spawn()
        del process, session, worker
        for _ in range(2):
            gc.collect()
            await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(None)
    assert [(context.get("message"), repr(context.get("exception"))) for context in unhandled] == []


async def test_an_overlong_line_is_skipped_not_fatal() -> None:
    """A notification beyond the reader's limit (a huge echoed image) costs that one line, not the session and
    every other turn on the worker."""
    peer = FakePeer()
    peer.to_session = asyncio.StreamReader(limit=1024)
    session = RpcSession(peer.to_session, peer.writer(), refuse)
    session.start()
    queue = session.subscribe("t")
    peer.to_session.feed_data(b'{"method": "big", "params": {"threadId": "t", "x": "' + b"x" * 700)
    await asyncio.sleep(0.01)
    peer.to_session.feed_data(b"y" * 5000 + b'"}}\n')  # the line ends far past the limit
    peer.say({"method": "after", "params": {"threadId": "t"}})
    peer.to_session.feed_data(b'{"method": "big2", "params": {"x": "' + b"z" * 2000 + b'"}}\n')
    peer.say({"method": "last", "params": {"threadId": "t"}})
    assert (await asyncio.wait_for(queue.get(), 2))["method"] == "after"
    assert (await asyncio.wait_for(queue.get(), 2))["method"] == "last"
    assert not session.closed.is_set()
    await session.close()
