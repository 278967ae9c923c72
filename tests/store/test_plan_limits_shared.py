"""The plan's limits shared through a real Redis (app/limits_shared.py): what one instance learns, every instance
honours, and one probe a minute passes across all of them."""

from __future__ import annotations

import pytest

from app.errors import ApiError
from app.limits import PROBE_INTERVAL, PlanLimits
from app.limits_shared import KEY, PROBE_KEY, RedisPlanState
from tests.redis_server import RedisServer

NOW = 1_796_450_000.0
FULL = {"rateLimits": {"limitId": "codex", "primary": {"usedPercent": 100, "windowDurationMins": 300,
                                                       "resetsAt": int(NOW) + 3600}}}  # fmt: skip


class Clock:
    now = NOW

    def __call__(self) -> float:
        return self.now


async def test_two_instances_share_one_state_and_one_probe(redis_server: RedisServer) -> None:
    clock = Clock()
    one = PlanLimits(shared=RedisPlanState(redis_server.url, 2), clock=clock)
    two = PlanLimits(shared=RedisPlanState(redis_server.url, 2), clock=clock)
    cleaner = RedisPlanState(redis_server.url, 2)
    await cleaner._client().delete([KEY, PROBE_KEY])
    try:
        one.update(FULL)
        one.limit_hit("You've hit your usage limit.")
        await one.close()  # the write is done
        one = PlanLimits(shared=RedisPlanState(redis_server.url, 2), clock=clock)
        snapshot = await two.current()
        assert snapshot.reached_until == NOW + 3600 and snapshot.primary is not None
        for limits in (one, two):  # right after the hit no instance lets a probe through
            with pytest.raises(ApiError):
                await limits.admit()
        await cleaner._client().delete([PROBE_KEY])  # the minute since the hit has passed, in Redis' own clock
        clock.now += PROBE_INTERVAL
        passed = 0
        for limits in (one, two, one, two):
            try:
                await limits.admit()
                passed += 1
            except ApiError as exc:
                assert exc.code == "usage_limit_reached"
        assert passed == 1 and one.refusals + two.refusals == 5
    finally:
        await cleaner._client().delete([KEY, PROBE_KEY])
        for limits in (one, two):
            await limits.close()
        await cleaner.close()


async def test_an_unreachable_redis_leaves_each_instance_its_own_state() -> None:
    clock = Clock()
    limits = PlanLimits(shared=RedisPlanState("redis://127.0.0.1:1/0", 0.5), clock=clock)
    limits.update(FULL)
    limits.limit_hit("You've hit your usage limit.")
    with pytest.raises(ApiError):
        await limits.admit()
    clock.now += PROBE_INTERVAL
    await limits.admit()  # the probe, decided locally
    await limits.close()
