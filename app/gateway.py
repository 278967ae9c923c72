"""The running gateway's shared state, reached by the API modules through `request.app.state.gateway`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from fastapi import Request

from app.auth import RateLimiter, caller_key, check_api_key
from app.background.runs import BackgroundRuns
from app.codex.binary import CodexBinary
from app.codex.catalog import Catalog
from app.codex.login import LoginWatch
from app.codex.provider import ProviderResolver
from app.codex.sandbox_probe import NOT_PROBED, SandboxStatus
from app.config import Settings
from app.errors import ApiError
from app.executor import Executor
from app.images import ImageFetcher
from app.policy.permissions import SandboxLayout
from app.schemas import SchemaChecker, SchemaLimits
from app.store import ResponseStore
from app.turn import RunPolicy


@dataclass
class Gateway:
    settings: Settings
    codex_home: Path
    providers: ProviderResolver
    binary: CodexBinary | None
    missing_reason: str
    catalog: Catalog
    executor: Executor | None
    limiter: RateLimiter
    store: ResponseStore
    images: ImageFetcher
    layout: SandboxLayout  # what no sandboxed command may read
    sandbox: SandboxStatus = NOT_PROBED
    login: LoginWatch | None = None  # None: without Codex there is no one to ask
    background: BackgroundRuns = field(default=None)  # type: ignore[assignment]  # set by create_app's lifespan

    @cached_property
    def schemas(self) -> SchemaChecker:
        """Checks the JSON Schemas clients send, within the CODEX_SCHEMA_* limits."""
        s = self.settings
        return SchemaChecker(
            SchemaLimits(
                s.codex_schema_max_bytes,
                s.codex_schema_max_depth,
                s.codex_schema_max_subschemas,
                s.codex_schema_timeout_seconds,
            )
        )

    def require_codex(self) -> Executor:
        if self.executor is None:
            raise ApiError(503, f"Codex is not available: {self.missing_reason}", code="codex_unavailable")
        return self.executor

    async def require_login(self) -> None:
        """Without the login its model provider needs, no turn is started: 503 codex_not_logged_in, at once."""
        if self.login is not None:
            await self.login.require()

    def require_sandbox(self, policy: RunPolicy) -> None:
        """An agent turn needs Codex's sandbox (unless danger-full-access): without one it is refused, by name."""
        if self.sandbox.refuses(policy.mode, policy.sandbox):
            raise ApiError(503, self.sandbox.reason(), code="sandbox_unavailable")


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def authorized(request: Request) -> Gateway:
    """FastAPI dependency of every /v1 route: API key, then rate limit."""
    gateway = gateway_of(request)
    check_api_key(request, gateway.settings.api_keys)
    await gateway.limiter.check(caller_key(request, auth_on=bool(gateway.settings.api_keys)))
    return gateway
