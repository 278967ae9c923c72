"""The JSON-RPC session against a fake stdio peer (pure protocol logic: no Codex here)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from app.codex.binary import CodexBinary
from app.engines.app_server.pool import AppServerPool, Worker
from app.engines.app_server.refusals import refuse
from app.engines.app_server.rpc import RpcError, RpcSession, RpcTimeout, SessionClosed


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


async def test_an_unanswered_request_times_out_and_reports_the_stall() -> None:
    peer = FakePeer()
    stalls: list[str] = []
    session = RpcSession(peer.to_session, peer.writer(), refuse, timeout=0.2, on_stall=stalls.append)
    session.start()
    with pytest.raises(RpcTimeout) as caught:
        await session.request("thread/start", {})
    assert caught.value.method == "thread/start" and stalls == ["thread/start"]
    late = await peer.sent.get()
    peer.say({"id": late["id"], "result": {"late": True}})  # an answer after the limit is dropped
    answered = asyncio.create_task(session.request("model/list", {}, timeout=5))
    sent = await peer.sent.get()
    peer.say({"id": sent["id"], "result": {"data": []}})
    assert await answered == {"data": []} and stalls == ["thread/start"]
    await session.close()


async def test_text_that_is_not_unicode_is_never_sent(pair: tuple[RpcSession, FakePeer]) -> None:
    """Codex drops a line holding a lone surrogate without an answer: it is refused here instead."""
    session, peer = pair
    with pytest.raises(RpcError, match="not Unicode"):
        await session.request("turn/start", {"input": [{"type": "text", "text": "\ud800"}]})
    assert peer.sent.empty()
    pending = asyncio.create_task(session.request("turn/start", {"input": [{"type": "text", "text": "日本 😀"}]}))
    sent = await peer.sent.get()
    assert sent["params"]["input"][0]["text"] == "日本 😀"
    peer.say({"id": sent["id"], "result": {}})
    await pending


FAKE_SERVER = """#!{python}
import json, sys, time
for raw in sys.stdin:
    message = json.loads(raw)
    method = message.get("method")
    if method == "initialize":
        print(json.dumps({{"id": message["id"], "result": {{}}}}), flush=True)
    elif method == "thread/start" and "{mode}" == "drop":
        continue  # one line lost, as Codex loses a line it cannot parse
    elif method == "thread/start":
        time.sleep(3600)  # hung: answers nothing from now on
    elif "id" in message:
        print(json.dumps({{"id": message["id"], "result": {{"data": []}}}}), flush=True)
"""


def fake_server(tmp_path: Path, mode: str) -> CodexBinary:
    script = tmp_path / f"fake-app-server-{mode}"
    script.write_text(FAKE_SERVER.format(python=sys.executable, mode=mode))
    script.chmod(0o755)
    return CodexBinary(script, {})


async def until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_a_worker_that_lost_one_request_serves_on(tmp_path: Path) -> None:
    pool = AppServerPool(fake_server(tmp_path, "drop"), {"PATH": "/usr/bin:/bin"}, tmp_path, 1, rpc_timeout=0.3)
    await pool.start()
    try:
        worker = await pool.acquire(5)
        assert worker.session is not None and worker.process is not None
        pid = worker.process.pid
        with pytest.raises(RpcTimeout):
            await worker.session.request("thread/start", {})
        assert await until(lambda: worker.ready.is_set() and worker._probe is not None and worker._probe.done())
        assert worker.process.pid == pid and pool.restarts == 0
        assert await worker.session.request("model/list", {}) == {"data": []}
    finally:
        await pool.stop()


async def test_a_worker_that_stopped_answering_is_replaced(tmp_path: Path) -> None:
    pool = AppServerPool(fake_server(tmp_path, "hang"), {"PATH": "/usr/bin:/bin"}, tmp_path, 1, rpc_timeout=0.3)
    await pool.start()
    try:
        worker = await pool.acquire(5)
        assert worker.session is not None and worker.process is not None
        hung = worker.process.pid
        with pytest.raises(RpcTimeout):
            await worker.session.request("thread/start", {})
        assert await until(lambda: pool.restarts == 1)
        assert "stopped answering" in worker.last_error and "thread/start" in worker.last_error
        replacement = await pool.acquire(10)
        assert replacement.process is not None and replacement.process.pid != hung
        assert replacement.session is not None
        assert await replacement.session.request("model/list", {}) == {"data": []}
        with pytest.raises(ProcessLookupError):
            os.kill(hung, 0)
    finally:
        await pool.stop()
