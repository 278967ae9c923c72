"""The plan's limits as pure logic (app/codex/plan_limits.py): account/rateLimits shapes, merging, the reset in Codex's
message, refusals and the probe a minute, what /limits shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.codex.plan_limits import (
    PROBE_INTERVAL,
    SOURCE_READ,
    PlanLimits,
    Snapshot,
    codex_limits,
    describe,
    parse_reset,
    summary,
)
from app.engines.app_server.refusals import refuse
from app.engines.app_server.rpc import RpcSession
from app.engines.exec import failure_from
from app.errors import ApiError
from app.turn import FailureKind

NOW = 1_796_450_000.0
WINDOW = {"usedPercent": 42, "windowDurationMins": 300, "resetsAt": 1_796_453_600}
WEEK = {"usedPercent": 20, "windowDurationMins": 10080, "resetsAt": 1_796_900_000}
# account/rateLimits/read with a ChatGPT login (GetAccountRateLimitsResponse): the account's id is never shown
READ = {
    "accountId": "acct-secret",
    "ordinaryUsageAllowed": True,
    "rateLimitResetCredits": {"availableCount": 0, "credits": None},
    "rateLimits": {"limitId": "codex", "primary": WINDOW, "secondary": WEEK, "planType": "plus", "credits": None},
    "rateLimitsByLimitId": {
        "codex": {
            "limitId": "codex",
            "limitName": None,
            "primary": WINDOW,
            "secondary": WEEK,
            "credits": {"hasCredits": True, "unlimited": False, "balance": "5"},
            "planType": "pro",
            "rateLimitReachedType": None,
        },
        "codex_other": {"limitId": "codex_other", "primary": {"usedPercent": 99}},
    },
}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def plan() -> tuple[PlanLimits, Clock]:
    clock = Clock()
    return PlanLimits(clock=clock), clock


def test_read_prefers_the_codex_bucket_of_the_multi_bucket_view() -> None:
    assert codex_limits(READ)["planType"] == "pro"
    assert codex_limits({"rateLimits": READ["rateLimits"]})["planType"] == "plus"  # the single-bucket view
    assert codex_limits({"rateLimits": {"limitId": "codex_other", "primary": WINDOW}}) is None  # another bucket
    assert codex_limits({"rateLimits": None}) is None and codex_limits(None) is None


def test_a_read_fills_the_snapshot_without_the_account() -> None:
    limits, _ = plan()
    assert limits.update(READ, SOURCE_READ)
    snap = limits.snapshot
    assert snap.plan_type == "pro" and snap.source == SOURCE_READ and snap.taken_at == NOW
    assert snap.primary is not None and snap.primary.used_percent == 42 and snap.primary.window_minutes == 300
    assert snap.secondary is not None and snap.secondary.resets_at == WEEK["resetsAt"]
    body = describe(snap, NOW)
    assert body["plan_type"] == "pro" and body["credits"] == {"has_credits": True, "unlimited": False, "balance": "5"}
    assert body["windows"]["primary"]["resets_at"] == "2026-12-05T06:53:20Z"
    assert body["windows"]["primary"]["resets_in_seconds"] == 3600 and body["limit_reached"] is False
    assert "acct-secret" not in str(body)
    assert "plan pro; primary (300 min) 42% used" in summary(snap, NOW)


def test_a_rolling_update_is_sparse() -> None:
    limits, clock = plan()
    limits.update(READ, SOURCE_READ)
    clock.now += 10
    update = {"rateLimits": {"limitId": "codex", "primary": {"usedPercent": 50}, "secondary": None, "planType": None}}
    limits.update(update)
    snap = limits.snapshot
    assert snap.plan_type == "pro" and snap.secondary is not None and snap.secondary.used_percent == 20
    assert snap.primary is not None and snap.primary.used_percent == 50 and snap.taken_at == NOW + 10


def test_nothing_known_is_said_plainly() -> None:
    body = describe(Snapshot(), NOW, "codex account authentication required to read rate limits")
    assert body["known"] is False and body["limit_reached"] is False and "authentication required" in body["message"]


LOCAL = timezone(timedelta(hours=9))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("You\u2019ve hit your usage limit. Try again at 6:37 PM.", datetime(2026, 12, 5, 18, 37, tzinfo=LOCAL)),
        ("You've hit your usage limit. Try again at Dec 6th, 2026 7:07 AM.", datetime(2026, 12, 6, 7, 7, tzinfo=LOCAL)),
        ("ERROR: Please try again at Jan 1st, 2027 12:05 AM.", datetime(2027, 1, 1, 0, 5, tzinfo=LOCAL)),
        ("Try again at 3:00 PM.", datetime(2026, 12, 6, 15, 0, tzinfo=LOCAL)),  # past today: tomorrow
    ],
)
def test_the_reset_in_codexs_message(message: str, expected: datetime) -> None:
    now = datetime(2026, 12, 5, 15, 30, tzinfo=LOCAL).timestamp()
    assert parse_reset(message, now, LOCAL) == expected.timestamp()


def test_a_message_without_a_time_or_within_its_minute() -> None:
    now = datetime(2026, 12, 5, 15, 30, 20, tzinfo=LOCAL).timestamp()
    assert parse_reset("You've hit your usage limit. Try again later.", now, LOCAL) is None
    assert parse_reset("Try again at 3:30 PM.", now, LOCAL) == now + PROBE_INTERVAL


async def test_refusals_hold_until_the_reset_with_one_probe_a_minute() -> None:
    limits, clock = plan()
    limits.update({"rateLimits": {"limitId": "codex", "primary": {**WINDOW, "usedPercent": 100}}})
    failed = limits.limit_hit("You've hit your usage limit. Try again at 6:53 AM.")
    assert failed.kind is FailureKind.USAGE_LIMIT and failed.retry_at == WINDOW["resetsAt"]
    assert "2026-12-05 06:53 UTC" in failed.message
    with pytest.raises(ApiError) as refused:
        await limits.admit()
    error = refused.value
    assert (error.status, error.code, error.type) == (429, "usage_limit_reached", "rate_limit_error")
    assert error.headers["Retry-After"] == "3600" and "06:53 UTC" in error.message
    clock.now += PROBE_INTERVAL  # a minute on: one request goes through as a probe, the next is refused
    await limits.admit()
    with pytest.raises(ApiError):
        await limits.admit()
    assert limits.refusals == 2 and limits.metrics()["reached"]
    clock.now = WINDOW["resetsAt"]  # the reset: refusals end
    await limits.admit()
    await limits.admit()
    assert not limits.reached()


async def test_an_answer_ends_the_refusal_early() -> None:
    limits, _ = plan()
    limits.limit_hit("You've hit your usage limit. Try again later.")  # no reset known: a probe interval
    with pytest.raises(ApiError) as refused:
        await limits.admit()
    assert "not known" in refused.value.message and refused.value.headers["Retry-After"] == "60"
    limits.turn_worked(NOW - 1)  # a turn that began before the hit proves nothing
    with pytest.raises(ApiError):
        await limits.admit()
    limits.turn_worked(NOW)
    await limits.admit()


def test_usage_limit_failures_of_the_exec_engine() -> None:
    assert failure_from("You\u2019ve hit your usage limit. Try again at 6:37 AM.").kind is FailureKind.USAGE_LIMIT
    assert failure_from("last status: 429 Too Many Requests").kind is FailureKind.RATE_LIMITED


async def test_thread_less_notifications_reach_the_hook() -> None:
    seen: list[dict[str, Any]] = []
    reader = asyncio.StreamReader()
    session = RpcSession(reader, None, refuse, seen.append)  # type: ignore[arg-type]
    session.start()
    update = {"method": "account/rateLimits/updated", "params": {"rateLimits": {"limitId": "codex"}}}
    reader.feed_data(b'{"method":"item/started","params":{"threadId":"t1"}}\n')
    reader.feed_data(__import__("json").dumps(update).encode() + b"\n")
    reader.feed_eof()
    await session.closed.wait()
    assert seen == [update]


def test_a_snapshot_round_trips_through_json() -> None:
    limits, _ = plan()
    limits.update(READ, SOURCE_READ)
    limits.limit_hit("Try again later.")
    assert Snapshot.from_json(limits.snapshot.to_json()) == limits.snapshot
    assert datetime.fromtimestamp(limits.snapshot.taken_at, UTC).year == 2026


async def test_the_startup_line_names_the_plan_a_chatgpt_login_reports(caplog: pytest.LogCaptureFixture) -> None:
    async def chatgpt() -> dict[str, Any]:
        return READ

    async def api_key() -> dict[str, Any]:
        raise RuntimeError("account/rateLimits/read: codex account authentication required to read rate limits")

    caplog.set_level("INFO", "codex_wrapper")
    await PlanLimits(reader=chatgpt, clock=Clock()).read_at_startup()
    await PlanLimits(reader=api_key, clock=Clock()).read_at_startup()
    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("ChatGPT plan: plan pro; primary (300 min) 42% used") for line in lines), lines
    assert any("not readable at startup (account/rateLimits/read: codex account authentication" in x for x in lines)
