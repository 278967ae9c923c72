"""Whether Codex has the login its model provider needs, asked of Codex itself: a short-lived `codex app-server`
answers `account/read` (does the provider require OpenAI auth, which account is there). Asked at startup, then
again when auth.json or config.toml change, and every few seconds while there is no login, so a login made while
the gateway runs is noticed without a restart. Without a login every request is refused at once (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.codex.binary import CodexBinary
from app.codex.file_stamp import Stamp, stamp
from app.config import Settings
from app.engines.app_server.pool import Worker
from app.engines.app_server.rpc import RpcError, SessionClosed
from app.errors import ApiError

log = logging.getLogger("codex_wrapper")
ASK_TIMEOUT = 15.0  # for a short-lived app-server to start and answer (~0.3 s when idle)
RETRY_SECONDS = 5.0  # while there is no login, how old an answer may be before Codex is asked again (in the background)


@dataclass(frozen=True)
class Login:
    needed: bool  # the model provider requires OpenAI auth (Codex's `requiresOpenaiAuth`)
    account: str | None  # the account's type ("apiKey", "chatgpt", ...), None when there is none
    error: str = ""  # Codex could not be asked: the login is unknown and requests go ahead

    @property
    def missing(self) -> bool:
        return not self.error and self.needed and self.account is None


def login_fix(settings: Settings) -> str:
    # an isolated home links the user's auth.json: the login goes to the user's CODEX_HOME
    return f"Fix: CODEX_HOME={settings.user_codex_home} npx codex login"


def not_logged_in(settings: Settings) -> str:
    """The one line said at startup, by `doctor`, in /ready and in every refused request."""
    return (
        f"Codex is not logged in: its model provider needs an OpenAI login (ChatGPT or API key) and "
        f"{settings.user_codex_home} has none. {login_fix(settings)}"
    )


def parse_account(result: Any) -> Login:
    """`account/read`'s answer (GetAccountResponse)."""
    if not isinstance(result, dict):
        return Login(False, None, f"account/read answered {str(result)[:100]!r}")
    account = result.get("account")
    kind = str(account.get("type") or "unknown") if isinstance(account, dict) else None
    return Login(result.get("requiresOpenaiAuth") is True, kind)


async def read_login(
    binary: CodexBinary, env: dict[str, str], cwd: Path, engine: str, timeout: float = ASK_TIMEOUT
) -> Login:
    """Ask a short-lived `codex app-server` (for both engines: a running one keeps the login it started with)."""
    worker = Worker(0, binary, env, cwd)
    try:
        await asyncio.wait_for(worker.spawn(), timeout)
        assert worker.session is not None
        login = parse_account(await asyncio.wait_for(worker.session.request("account/read", {}), timeout))
    except (OSError, TimeoutError, SessionClosed, RpcError) as exc:
        return Login(False, None, f"cannot ask Codex whether it is logged in: {str(exc) or type(exc).__name__}")
    finally:
        await worker.terminate()
    return login  # CODEX_API_KEY is no login here: no credential reaches Codex's environment (app/codex/env.py)


class LoginWatch:
    """Codex's last answer. Asked again before answering when `paths` changed (the next request after a login is
    served), and in the background when it is older than `retry` seconds while there is none (a login kept
    elsewhere, e.g. a keyring). `on_login` runs when a login appears, before any request sees it."""

    def __init__(
        self,
        ask: Callable[[], Awaitable[Login]],
        paths: tuple[Path, ...],
        message: str,
        on_login: Callable[[], Awaitable[None]] | None = None,
        retry: float = RETRY_SECONDS,
    ) -> None:
        self.ask = ask
        self.paths = paths
        self.message = message
        self.on_login = on_login
        self.retry = retry
        self.state = Login(False, None, "not asked yet")
        self._stamp: Stamp | None = None
        self._asked = 0.0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    async def start(self) -> Login:
        """The first answer, with one warning line when there is no login (or Codex could not be asked)."""
        async with self._lock:
            await self._refresh(first=True)
        return self.state

    async def current(self) -> Login:
        if self._stamp != stamp(self.paths):
            async with self._lock:
                if self._stamp != stamp(self.paths):
                    await self._refresh()
        elif self._due() and (self._background is None or self._background.done()):
            self._background = asyncio.create_task(self._refresh_later())
        return self.state

    async def require(self) -> None:
        """Raise the 503 every request gets while Codex has no login."""
        if (await self.current()).missing:
            raise ApiError(503, self.message, code="codex_not_logged_in")

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background

    def _due(self) -> bool:
        unknown_or_missing = self.state.missing or bool(self.state.error)
        return unknown_or_missing and time.monotonic() - self._asked > self.retry

    async def _refresh_later(self) -> None:
        async with self._lock:
            if self._due():
                await self._refresh()

    async def _refresh(self, first: bool = False) -> None:
        before, seen = self.state, stamp(self.paths)  # taken before asking: a change while Codex answers is seen next
        now = await self.ask()
        self._stamp, self._asked = seen, time.monotonic()
        if now.error:
            if first or not before.error:
                log.warning("%s; requests go ahead", now.error)
            if not before.error:
                return  # keep the last answer that Codex gave
        elif now.missing and (first or not before.missing):
            log.warning(self.message)
        elif before.missing and not now.missing:
            log.info("Codex is logged in now (%s account)", now.account)
            if self.on_login is not None:
                try:
                    await self.on_login()
                except Exception:  # the login still counts; the engine reports its own state in /ready
                    log.exception("after the login, restarting Codex failed")
        self.state = now
