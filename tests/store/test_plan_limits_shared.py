"""The plan's limits shared through a real Redis (app/codex/plan_limits_shared.py): what one instance learns,
every instance honours, and one probe a minute passes across all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.codex.plan_limits import PROBE_INTERVAL, PlanLimits
from app.codex.plan_limits_shared import RedisPlanState, account_scope
from app.errors import ApiError
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
    await cleaner.clear()
    try:
        one.update(FULL)
        one.limit_hit("You've hit your usage limit.")
        await one.close()  # the write is done
        one = PlanLimits(shared=RedisPlanState(redis_server.url, 2), clock=clock)
        snapshot = await two.current()
        assert snapshot.reached_until == NOW + 3600 and snapshot.primary is not None
        other_account = PlanLimits(shared=RedisPlanState(redis_server.url, 2, scope="another"), clock=clock)
        await other_account.admit()  # another login's plan is not this one's
        assert not (await other_account.current()).taken_at
        await other_account.close()
        for limits in (one, two):  # right after the hit no instance lets a probe through
            with pytest.raises(ApiError):
                await limits.admit()
        await cleaner._client().delete([cleaner.probe_key])  # the minute since the hit has passed, in Redis' own clock
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
        await cleaner.clear()
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


def test_the_scope_is_the_account_hashed(tmp_path: Path) -> None:
    (tmp_path / "auth.json").write_text(json.dumps({"tokens": {"account_id": "acct-1", "access_token": "secret"}}))
    scope = account_scope(tmp_path, "openai@https://api.openai.com/v1")
    assert "acct-1" not in scope and len(scope) == 16
    assert scope != account_scope(tmp_path / "none", "openai@https://api.openai.com/v1")
    (tmp_path / "auth.json").write_text(json.dumps({"tokens": {"account_id": "acct-2"}}))
    assert scope != account_scope(tmp_path, "openai@https://api.openai.com/v1")
