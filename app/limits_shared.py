"""The plan's limits in Redis, when CODEX_STORE_URL is redis://: one state for every instance of the gateway.

Keys: `codex-wrapper:plan-limits` (the snapshot as JSON; the latest write wins, each instance adopts a newer one)
and `codex-wrapper:plan-limits:probe` (set for a minute by the instance that lets a probe through).
"""

from __future__ import annotations

import json

import coredis
from coredis.tokens import PureToken

from app.config import Settings
from app.limits import PlanLimits, Snapshot

KEY = "codex-wrapper:plan-limits"
PROBE_KEY = KEY + ":probe"


class RedisPlanState:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._redis: coredis.Redis[str] | None = None  # made on first use, inside the running event loop

    def _client(self) -> coredis.Redis[str]:
        if self._redis is None:
            self._redis = coredis.Redis.from_url(
                self.url, decode_responses=True, connect_timeout=self.timeout, stream_timeout=self.timeout
            )
        return self._redis

    async def load(self) -> Snapshot | None:
        raw = await self._client().get(KEY)
        return Snapshot.from_json(json.loads(raw)) if raw else None

    async def save(self, snapshot: Snapshot, hold_probe: float = 0.0) -> None:
        await self._client().set(KEY, json.dumps(snapshot.to_json()))
        if hold_probe:
            await self._client().set(PROBE_KEY, "1", px=int(hold_probe * 1000))

    async def claim_probe(self, seconds: float) -> bool:
        """Whether this instance may let the next probe through (one per `seconds` across instances)."""
        return bool(await self._client().set(PROBE_KEY, "1", px=int(seconds * 1000), condition=PureToken.NX))

    async def close(self) -> None:
        if self._redis is not None:
            self._redis.connection_pool.disconnect()
            self._redis = None


def plan_limits(settings: Settings) -> PlanLimits:
    """The gateway's tracker: shared through Redis when the response store is Redis."""
    if settings.store_is_redis:
        return PlanLimits(shared=RedisPlanState(settings.codex_store_url, settings.codex_store_timeout_seconds))
    return PlanLimits()
