"""The plan's limits in Redis, when CODEX_STORE_URL is redis://: one state for the instances of one login.

A plan belongs to an account, not to the fleet: instances signed in with different accounts must not refuse each
other's turns. So the keys name a scope, a hash of the ChatGPT account id in auth.json (of the provider's name and
URL without one), never the id itself:
`codex-wrapper:plan-limits:<scope>` (the snapshot as JSON; the latest write wins, each instance adopts a newer one)
and `codex-wrapper:plan-limits:<scope>:probe` (set for a minute by the instance that lets a probe through, and by
the one whose turn hit the limit).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import coredis
from coredis.tokens import PureToken

from app.codex.plan_limits import PlanLimits, Snapshot
from app.config import Settings

PREFIX = "codex-wrapper:plan-limits"


def account_scope(codex_home: Path, provider: str) -> str:
    """Who the plan belongs to, as a hash: the ChatGPT account of `codex_home`'s login, else the provider."""
    try:
        auth = json.loads((codex_home / "auth.json").read_text())
        account = str((auth.get("tokens") or {}).get("account_id") or "") if isinstance(auth, dict) else ""
    except (OSError, ValueError):
        account = ""
    basis = f"chatgpt:{account}" if account else f"provider:{provider}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


class RedisPlanState:
    def __init__(self, url: str, timeout: float, scope: str = "default") -> None:
        self.url = url
        self.timeout = timeout
        self.key = f"{PREFIX}:{scope}"
        self.probe_key = f"{self.key}:probe"
        self._redis: coredis.Redis[str] | None = None  # made on first use, inside the running event loop

    def _client(self) -> coredis.Redis[str]:
        if self._redis is None:
            self._redis = coredis.Redis.from_url(
                self.url, decode_responses=True, connect_timeout=self.timeout, stream_timeout=self.timeout
            )
        return self._redis

    async def load(self) -> Snapshot | None:
        raw = await self._client().get(self.key)
        return Snapshot.from_json(json.loads(raw)) if raw else None

    async def save(self, snapshot: Snapshot, hold_probe: float = 0.0) -> None:
        await self._client().set(self.key, json.dumps(snapshot.to_json()))
        if hold_probe:
            await self._client().set(self.probe_key, "1", px=int(hold_probe * 1000))

    async def claim_probe(self, seconds: float) -> bool:
        """Whether this instance may let the next probe through (one per `seconds` across instances)."""
        return bool(await self._client().set(self.probe_key, "1", px=int(seconds * 1000), condition=PureToken.NX))

    async def clear(self) -> None:
        await self._client().delete([self.key, self.probe_key])

    async def close(self) -> None:
        if self._redis is not None:
            self._redis.connection_pool.disconnect()
            self._redis = None


def shared_state(settings: Settings, codex_home: Path, provider: str) -> RedisPlanState | None:
    if not settings.store_is_redis:
        return None
    scope = account_scope(codex_home, provider)
    return RedisPlanState(settings.codex_store_url, settings.codex_store_timeout_seconds, scope)


def plan_limits(settings: Settings, codex_home: Path, provider: str) -> PlanLimits:
    """The gateway's tracker: shared through Redis with the instances of the same login when the store is Redis."""
    return PlanLimits(shared=shared_state(settings, codex_home, provider))
