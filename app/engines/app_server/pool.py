"""The app-server pool: `codex app-server` worker processes, each with its JSON-RPC session, restarted when they die."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.codex.binary import CodexBinary, end_group, kill_group
from app.codex.command_limits import Cgroups, Group
from app.codex.file_stamp import Stamp
from app.engines.app_server.refusals import refuse
from app.engines.app_server.rpc import (
    DEFAULT_TIMEOUT,
    NotificationHandler,
    RpcError,
    RpcSession,
    RpcTimeout,
    SessionClosed,
)

log = logging.getLogger("codex_wrapper")
_LINE_LIMIT = 64 * 1024 * 1024
_HANDSHAKE_TIMEOUT = 30.0
_BACKOFF_START, _BACKOFF_MAX, _STABLE_AFTER = 0.5, 30.0, 30.0
# Unload a thread as soon as its last subscriber leaves. Codex's default delay keeps every finished thread in
# memory for a while: measured, +0.8 MB per request (2 GB after 2000); with 0 the workers stay flat.
WORKER_ARGS = ("app-server", "-c", "thread_unload_delay_secs=0")
CLIENT_INFO = {"name": "codex-wrapper", "title": "Codex-Wrapper", "version": "0.1.0"}
PROBE_METHOD = "thread/loaded/list"  # cheap and local: asked when a request went unanswered, to tell a hang


class PoolUnavailable(Exception):
    """No app-server worker became ready in time."""


class Worker:
    """One `codex app-server` process and its session."""

    def __init__(
        self,
        index: int,
        binary: CodexBinary,
        env: dict[str, str],
        cwd: Path,
        on_notification: NotificationHandler | None = None,
        rpc_timeout: float = DEFAULT_TIMEOUT,
        cgroups: Cgroups | None = None,
    ) -> None:
        self.index = index
        self.on_notification = on_notification
        self.rpc_timeout = rpc_timeout
        self.cgroups = cgroups  # each run of the worker in a cgroup of its own, its commands' limits
        self.group: Group | None = None
        self.binary = binary
        self.env = env
        self.cwd = cwd
        self.launcher: Callable[[], list[str]] | None = None  # what it runs under, asked at each start (worker_seal)
        self.after_start: Callable[[Worker], Awaitable[None]] | None = None  # after the handshake (the login)
        self.login_stamp: Stamp | None = None  # of the login handed to it (app/codex/login_handover.py)
        self.process: asyncio.subprocess.Process | None = None
        self.session: RpcSession | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self.settled = asyncio.Event()  # its first start has succeeded or failed
        self.active = 0
        self.last_error = ""
        self.stderr_tail = b""
        self.hung = ""  # why it was killed for not answering, until it is replaced
        self._stderr_task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None

    async def spawn(self) -> None:
        """Start the process on sockets, not pipes: a socket cannot be opened again through /proc/self/fd, so what
        Codex reads on a model's behalf in its own process (apply_patch, view_image) cannot tap the session."""
        self.leave_group()
        self.group = self.cgroups.group(f"worker{self.index}") if self.cgroups else None
        ours, theirs = socket.socketpair()
        errors, their_errors = socket.socketpair()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *(self.launcher() if self.launcher else ()),
                str(self.binary.path),
                *WORKER_ARGS,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=their_errors.fileno(),
                env=self.env,
                cwd=str(self.cwd),
                start_new_session=True,
                preexec_fn=self.group.preexec() if self.group else None,
            )
        except BaseException:
            ours.close()
            errors.close()
            raise
        finally:
            theirs.close()
            their_errors.close()
            if self.group is not None:
                self.group.started()
        reader, self._writer = await asyncio.open_connection(sock=ours, limit=_LINE_LIMIT)
        error_reader, error_writer = await asyncio.open_connection(sock=errors)
        self.stderr_tail = b""
        self._stderr_task = asyncio.create_task(self._keep_stderr(error_reader, error_writer))
        self.hung = ""
        self.session = RpcSession(
            reader, self._writer, refuse, self.on_notification, timeout=self.rpc_timeout, on_stall=self._stalled
        )
        self.session.start()
        try:
            await self.session.request(
                "initialize",
                {"clientInfo": CLIENT_INFO, "capabilities": {"experimentalApi": True}},
                timeout=_HANDSHAKE_TIMEOUT,
            )
            await self.session.notify("initialized")
            if self.after_start is not None:
                await self.after_start(self)
        except BaseException:
            await self.terminate()
            raise

    def _stalled(self, method: str) -> None:
        """A request went unanswered: check the worker (once at a time); no new turn goes to it meanwhile."""
        if self.ready.is_set() and (self._probe is None or self._probe.done()):
            self._probe = asyncio.create_task(self._check_alive(method))

    async def _check_alive(self, method: str) -> None:
        """Ask something cheap: an answer means only that one request was lost (the worker serves on); none means
        the worker has stopped answering, and it is killed so that its supervisor starts a new one."""
        session, process = self.session, self.process
        if session is None or process is None:
            return
        self.ready.clear()
        try:
            await session.request(PROBE_METHOD, {}, timeout=self.rpc_timeout)
        except RpcTimeout:
            self.hung = f"answered neither {method} nor {PROBE_METHOD} within {self.rpc_timeout:g} s"
            log.warning("app-server worker %d %s: replacing it", self.index, self.hung)
            kill_group(process.pid, signal.SIGKILL)  # its stdout ends: the supervisor restarts it
            return
        except SessionClosed:
            return
        except RpcError:
            pass  # an error is an answer
        if self.session is session and not session.closed.is_set():
            self.ready.set()

    async def _keep_stderr(self, stream: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The last lines Codex wrote to stderr, to say why a worker died."""
        try:
            while chunk := await stream.read(65536):
                self.stderr_tail = (self.stderr_tail + chunk)[-2000:]
        finally:
            writer.close()

    def last_words(self) -> str:
        """Codex's `Error: ...` line if it printed one (a backtrace may follow it), else its last line."""
        lines = [line.strip() for line in self.stderr_tail.decode(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")]
        return (errors or lines or [""])[-1][:300]

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
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):  # collects a broken socket's error, else asyncio logs it
                await self._writer.wait_closed()
        kill_group(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 3)
        except TimeoutError:
            kill_group(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        await end_group(self.process.pid)  # the rest of its group (sandbox helpers) gone before this returns
        self.leave_group()

    def leave_group(self) -> None:
        if self.group is not None:
            self.group.remove()
            self.group = None


class AppServerPool:
    """`size` workers, each restarted with backoff when it dies."""

    def __init__(
        self,
        binary: CodexBinary,
        env: dict[str, str],
        cwd: Path,
        size: int,
        on_notification: NotificationHandler | None = None,
        rpc_timeout: float = DEFAULT_TIMEOUT,
        cgroups: Cgroups | None = None,
    ) -> None:
        self.workers = [Worker(i, binary, env, cwd, on_notification, rpc_timeout, cgroups) for i in range(size)]
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
            if worker.hung:
                worker.last_error = f"stopped answering ({worker.hung}) and was killed"
            log.warning("app-server worker %d %s; restarting", worker.index, worker.last_error)
            await worker.terminate()  # the rest of its process group
            if loop.time() - started > _STABLE_AFTER:
                backoff = _BACKOFF_START
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def restart(self) -> None:
        """Replace every worker with a new process (they are idle: see AppServerEngine.reload)."""
        await self.stop()
        self._stopping = False
        for worker in self.workers:
            worker.ready.clear()
            worker.settled.clear()
            worker.last_error = ""
        await self.start()

    async def stop(self) -> None:
        self._stopping = True
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        await asyncio.gather(*(w.terminate() for w in self.workers), return_exceptions=True)
