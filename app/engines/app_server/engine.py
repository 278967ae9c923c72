"""The `app-server` engine: a supervised pool of warm `codex app-server` processes, a thread per turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from app.codex.binary import CodexBinary
from app.codex.command_limits import Cgroups
from app.codex.file_stamp import stamp
from app.codex.login_handover import Handover, read_handover
from app.engines.app_server.dynamic_tools import TOOL_CALL_REQUEST, ClientCalls, ToolNames
from app.engines.app_server.pool import AppServerPool, PoolUnavailable, Worker
from app.engines.app_server.rpc import (
    DEFAULT_TIMEOUT,
    NotificationHandler,
    RpcError,
    RpcSession,
    RpcTimeout,
    SessionClosed,
)
from app.engines.app_server.spare_threads import SpareThreads
from app.engines.app_server.translate import (
    TurnTranslator,
    gateway_reads_project_doc,
    split_conversation,
    thread_params,
    turn_params,
)
from app.engines.base import Engine
from app.policy.project_docs import instructions_message, read_project_doc
from app.policy.worker_seal import WorkerSeal
from app.turn import Completed, Failed, FailureKind, Turn, TurnEvent, UsageReport


class AppServerEngine(Engine):
    name = "app-server"
    client_tools = True
    seal: WorkerSeal | None = None  # its workers run under it: agent turns without the permission profile

    def __init__(
        self,
        binary: CodexBinary,
        env: dict[str, str],
        cwd: Path,
        workers: int,
        wait: float,
        on_notification: NotificationHandler | None = None,
        rpc_timeout: float = DEFAULT_TIMEOUT,
        cgroups: Cgroups | None = None,
        seal: WorkerSeal | None = None,
    ) -> None:
        self.pool = AppServerPool(binary, env, cwd, workers, on_notification, rpc_timeout, cgroups)
        self.env = env
        self._seal_workers(seal)
        self.wait = wait
        self.spares = SpareThreads()
        self._cleanups: set[asyncio.Task[None]] = set()

    @property
    def sealed(self) -> bool:
        return self.seal is not None

    def _seal_workers(self, seal: WorkerSeal | None) -> None:
        """What each worker runs under from its next start: the seal and the login hand-over, or neither."""
        self.seal = seal
        for worker in self.pool.workers:
            if seal is None:
                worker.launcher, worker.env, worker.after_start = None, self.env, None
            else:
                worker.launcher, worker.env, worker.after_start = seal.argv, seal.env(self.env), self._hand_over

    async def _hand_over(self, worker: Worker, login: Handover | None = None) -> None:
        """A sealed worker's login, in memory only (app/codex/login_handover.py): at its start, and again when
        auth.json has changed since (a new key, or none: then it logs out)."""
        assert self.seal is not None and worker.session is not None
        login = login or read_handover(self.seal.codex_home)
        if login.params is not None:
            await worker.session.request("account/login/start", login.params)
        elif worker.login_stamp is not None:
            await worker.session.request("account/logout", {})
        worker.login_stamp = login.stamp

    async def _login_current(self, worker: Worker) -> str:
        """'' once a sealed worker has the login auth.json holds now; else why it cannot (the workers are then
        unsealed and restarted: a ChatGPT login needs the permission profile)."""
        if self.seal is None or worker.login_stamp == stamp((self.seal.codex_home / "auth.json",)):
            return ""
        login = read_handover(self.seal.codex_home)
        if login.sealable:
            await self._hand_over(worker, login)
            return ""
        task = asyncio.create_task(self.reload())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return f"the login changed to one that sealed workers cannot hold ({login.kind}): Codex is restarting"

    def _unseal_if_needed(self) -> None:
        if self.seal is not None and not read_handover(self.seal.codex_home).sealable:
            self._seal_workers(None)
            logging.getLogger("codex_wrapper").info(
                "app-server workers unsealed: the new login needs the permission profile (app/codex/login_handover.py)"
            )

    async def prewarm(self, turn: Turn) -> None:
        """Start a spare thread on every ready worker for requests shaped like `turn` (the server defaults)."""
        params = thread_params(turn, self.sealed)
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

    async def reload(self) -> None:
        """New workers: a running app-server keeps the credentials it started with, so one started before a login
        would send the model requests without it. Only called while no turn runs (none is admitted without a login)."""
        self._unseal_if_needed()
        await self.spares.stop()
        self.spares.forget()
        await self.pool.restart()

    def status(self) -> str:
        return f"{self.pool.status()}; spare threads used {self.spares.hits}, missed {self.spares.misses}"

    def ready(self) -> bool:
        return self.pool.healthy() > 0

    def restarts(self) -> int:
        return self.pool.restarts

    async def read_rate_limits(self) -> dict[str, Any] | None:
        """account/rateLimits/read on a ready worker (RpcError unless Codex has a ChatGPT login); None if none is."""
        worker = await self.pool.acquire(self.wait)
        if worker.session is None:
            return None
        params = {"excludeResetCreditDetails": True}  # a background read: the available count is enough
        return await asyncio.wait_for(worker.session.request("account/rateLimits/read", params), 15)

    async def run(self, turn: Turn) -> AsyncGenerator[TurnEvent, None]:
        try:
            names = ToolNames(turn.tools)
            params = thread_params(turn, self.sealed)
            worker = await self.pool.acquire(self.wait)
        except ValueError as exc:
            yield Failed(FailureKind.CRASHED, f"Codex cannot take these functions: {exc}")
            return
        except PoolUnavailable as exc:
            yield Failed(FailureKind.UNAVAILABLE, str(exc))
            return
        session = worker.session
        assert session is not None
        try:
            why = await self._login_current(worker)
        except (RpcError, SessionClosed) as exc:
            why = f"Codex did not take the new login: {exc}"
        if why:
            yield Failed(FailureKind.UNAVAILABLE, why)
            return
        worker.active += 1
        thread_id: str | None = None
        turn_id: str | None = None
        finished = False  # Codex's turn is over (else it is interrupted once we are done with it)
        try:
            thread_id = self.spares.take(session, params)
            if thread_id is None:
                thread_id = str((await session.request("thread/start", params))["thread"]["id"])
            queue = session.subscribe(thread_id, (TOOL_CALL_REQUEST,) if turn.tools else ())
            history, prompt = split_conversation(turn.messages, names)
            if gateway_reads_project_doc(turn):
                policy = turn.policy
                doc = await asyncio.to_thread(read_project_doc, policy.cwd, policy.denied)
                if doc is not None:
                    history.insert(0, instructions_message(policy.cwd, doc))
            if history:
                await session.request("thread/inject_items", {"threadId": thread_id, "items": history})
            started = await session.request("turn/start", turn_params(thread_id, prompt, turn))
            turn_id = str((started.get("turn") or {}).get("id") or "") or None
            translator = TurnTranslator()
            calls = ClientCalls(names, turn_id) if turn.tools else None
            while not finished:
                message = await queue.get()
                if message is None:
                    raise SessionClosed("the app-server exited")
                made = calls.feed(message) if calls is not None else None
                if made is not None and calls is not None:  # the model's response calls client functions: done
                    text = "".join(translator.text)
                    ending: tuple[TurnEvent, ...] = (*made, UsageReport(calls.usage), Completed(text))
                    for event in ending:
                        yield event
                    return
                for event in translator.feed(message):
                    finished = isinstance(event, (Completed, Failed))
                    yield event
        except SessionClosed:
            finished = True
            yield Failed(FailureKind.CRASHED, "The Codex app-server process exited during the turn.")
        except RpcTimeout as exc:
            finished = True
            why = (
                f"The Codex app-server did not answer {exc.method} within {exc.timeout:g} s "
                "(CODEX_RPC_TIMEOUT_SECONDS); the worker is checked and replaced if it has stopped answering."
            )
            yield Failed(FailureKind.TIMEOUT, why)
        except RpcError as exc:
            finished = True
            yield Failed(FailureKind.CRASHED, f"Codex refused the turn: {exc}")
        finally:
            worker.active -= 1
            if thread_id is not None:  # after the turn; a costly one (under a profile) not beside other turns
                self.spares.refill(session, params, busy=worker.active > 0 and "permissions" in params)
                task = asyncio.create_task(self._release(session, thread_id, None if finished else turn_id))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)
            if worker.active == 0:
                self.spares.idle(session)

    @staticmethod
    async def _release(session: RpcSession, thread_id: str, interrupt_turn: str | None) -> None:
        """Interrupt an unfinished turn, then answer what it still asks (pending client tool calls, only now so
        Codex cannot send the model an answer), then let the app-server unload the thread."""
        try:
            with contextlib.suppress(SessionClosed, RpcError):  # RpcTimeout too: the pool then checks the worker
                if interrupt_turn is not None:
                    await session.request("turn/interrupt", {"threadId": thread_id, "turnId": interrupt_turn}, 5)
        finally:
            session.unsubscribe(thread_id)
        with contextlib.suppress(SessionClosed, RpcError):
            await session.request("thread/unsubscribe", {"threadId": thread_id}, 5)
