"""One suite for both response store backends (SQLite, and a real Redis server): what the API relies on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from app import turn
from app.background import runs as background_runs
from app.background.runs import BackgroundRuns
from app.store import RedisStore, ResponseStore, SqliteStore, StoredResponse
from app.turn import Message
from tests.redis_server import RedisServer

ALICE, BOB = "a" * 64, "b" * 64
MakeStore = Callable[..., ResponseStore]


def stored(response_id: str, *, inputs: tuple[str, ...] = ("msg_in",), output: str = "msg_out") -> StoredResponse:
    response = {
        "id": response_id,
        "object": "response",
        "status": "completed",
        "output": [
            {"id": f"rs_{response_id}", "type": "reasoning", "summary": []},
            {"id": output, "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ü"}]},
        ],
    }
    content = [{"type": "input_text", "text": "question"}]
    items = [{"id": i, "type": "message", "role": "user", "content": content} for i in inputs]
    conversation = (Message("user", "question ✓"), Message("assistant", "answer"))
    return StoredResponse(response, items, conversation)


@pytest.fixture(params=["sqlite", "redis"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[MakeStore]:
    """`make_store(ttl_days=30)`: a new store object; those of one test share their storage (like instances)."""
    made: list[ResponseStore] = []
    if request.param == "redis":
        assert redis_server.command("FLUSHALL").startswith(b"+OK")

    def make(ttl_days: float = 30) -> ResponseStore:
        if request.param == "sqlite":
            store: ResponseStore = SqliteStore(tmp_path / "responses.sqlite3", ttl_days)
        else:
            store = RedisStore(redis_server.url, redis_server.url, ttl_days, timeout=2)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


async def test_a_response_comes_back_whole(make_store: MakeStore) -> None:
    store = make_store()
    original = stored("resp_1")
    await store.put(ALICE, original)
    again = await make_store().get(ALICE, "resp_1")  # another instance
    assert again == original
    assert await store.get(ALICE, "resp_nope") is None


async def test_another_owner_sees_nothing(make_store: MakeStore) -> None:
    store = make_store()
    await store.put(ALICE, stored("resp_1"))
    assert await store.get(BOB, "resp_1") is None
    assert await store.find_item(BOB, "msg_out") is None
    assert await store.find_item(BOB, "msg_in") is None
    assert await store.delete(BOB, "resp_1") is False
    assert await store.get(ALICE, "resp_1") is not None


async def test_items_are_found_by_id_among_outputs_and_inputs(make_store: MakeStore) -> None:
    store = make_store()
    original = stored("resp_1", inputs=("msg_a", "msg_b"), output="msg_answer")
    await store.put(ALICE, original)
    reader = make_store()
    assert await reader.find_item(ALICE, "msg_answer") == original.response["output"][1]
    assert await reader.find_item(ALICE, "rs_resp_1") == original.response["output"][0]
    assert await reader.find_item(ALICE, "msg_b") == original.input_items[1]
    assert await reader.find_item(ALICE, "resp_1") is None  # a response is not an item
    assert await reader.find_item(ALICE, "msg_nope") is None


async def test_delete_removes_the_response_and_its_items(make_store: MakeStore) -> None:
    store = make_store()
    await store.put(ALICE, stored("resp_1", inputs=("msg_a",), output="msg_b"))
    await store.put(ALICE, stored("resp_2", inputs=("msg_c",), output="msg_d"))
    assert await make_store().delete(ALICE, "resp_1") is True
    assert await store.get(ALICE, "resp_1") is None
    assert await store.find_item(ALICE, "msg_a") is None
    assert await store.find_item(ALICE, "msg_b") is None
    assert await store.find_item(ALICE, "rs_resp_1") is None
    assert await store.delete(ALICE, "resp_1") is False
    assert await store.find_item(ALICE, "msg_c") is not None and await store.get(ALICE, "resp_2") is not None


async def test_an_item_used_again_belongs_to_the_latest_response(make_store: MakeStore) -> None:
    store = make_store()
    first, second = stored("resp_1", inputs=("msg_same",)), stored("resp_2", inputs=("msg_same",))
    second.input_items[0]["content"][0]["text"] = "second"
    await store.put(ALICE, first)
    await store.put(ALICE, second)
    assert (await store.find_item(ALICE, "msg_same"))["content"][0]["text"] == "second"
    await store.delete(ALICE, "resp_1")
    assert (await store.find_item(ALICE, "msg_same"))["content"][0]["text"] == "second"
    await store.delete(ALICE, "resp_2")
    assert await store.find_item(ALICE, "msg_same") is None


async def test_a_response_stored_again_replaces_its_items(make_store: MakeStore) -> None:
    store = make_store()
    await store.put(ALICE, stored("resp_1", inputs=("msg_old",)))
    await store.put(ALICE, stored("resp_1", inputs=("msg_new",)))
    assert await store.find_item(ALICE, "msg_old") is None
    assert await store.find_item(ALICE, "msg_new") is not None


async def test_responses_and_items_expire_after_the_ttl(make_store: MakeStore) -> None:
    store = make_store(ttl_days=0.4 / 86400)  # 0.4 s
    await store.put(ALICE, stored("resp_1"))
    assert await store.get(ALICE, "resp_1") is not None and await store.find_item(ALICE, "msg_in") is not None
    await asyncio.sleep(0.6)
    assert await store.get(ALICE, "resp_1") is None
    assert await store.find_item(ALICE, "msg_in") is None
    assert await store.find_item(ALICE, "msg_out") is None


async def test_concurrent_writers_lose_nothing(make_store: MakeStore) -> None:
    writers = [make_store(), make_store()]
    await asyncio.gather(*(writers[n % 2].put(ALICE, stored(f"resp_{n}", output=f"msg_{n}")) for n in range(40)))
    found = await asyncio.gather(*(writers[(n + 1) % 2].get(ALICE, f"resp_{n}") for n in range(40)))
    assert all(item is not None and item.response["id"] == f"resp_{n}" for n, item in enumerate(found))


async def test_the_conversation_is_kept_through_the_turn_codec_only(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another module owns the history's shape (tool calls, outputs…): a store keeps its JSON as it is."""
    shape: list[dict[str, Any]] = [
        {"type": "function_call", "call_id": "c1", "arguments": '{"x": [1, 2.5, null]}', "extra": {"ü": True}},
        {"type": "function_call_output", "call_id": "c1", "output": ""},
        {"role": "user", "text": "plain"},
    ]
    seen: list[Any] = []
    monkeypatch.setattr(turn, "encode_history", lambda _messages: shape)
    monkeypatch.setattr(turn, "decode_history", lambda raw: seen.append(raw) or (Message("user", "decoded"),))
    store = make_store()
    await store.put(ALICE, stored("resp_1"))
    again = await store.get(ALICE, "resp_1")
    assert again is not None and again.conversation == (Message("user", "decoded"),)
    assert json.dumps(seen[0], sort_keys=True) == json.dumps(shape, sort_keys=True)


async def test_health_names_the_backend(make_store: MakeStore) -> None:
    store = make_store()
    health = await store.health(detail=True)
    assert health.state == "ok" and health.backend == store.backend and health.detail
    assert store.up and store.write_failures == 0


def running(response_id: str, status: str = "in_progress") -> StoredResponse:
    kept = stored(response_id)
    return StoredResponse({**kept.response, "status": status, "background": True}, kept.input_items, ())


def numbered(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {"type": "response.output_text.delta", "sequence_number": n, "delta": str(n)}
        for n in range(first, first + count)
    ]


async def test_a_background_run_keeps_its_events_once_and_in_order(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()
    await store.save_run(ALICE, running("resp_bg"), numbered(0, 2), 0, begin="gw-1")
    await store.save_run(ALICE, running("resp_bg"), numbered(2, 3), 2)
    await store.save_run(ALICE, running("resp_bg"), numbered(2, 3), 2)  # a retried write adds nothing
    assert [e["sequence_number"] for e in await other.run_events(ALICE, "resp_bg", -1)] == [0, 1, 2, 3, 4]
    assert [e["sequence_number"] for e in await other.run_events(ALICE, "resp_bg", 2)] == [3, 4]
    assert await other.run_events(BOB, "resp_bg", -1) == []
    record = await other.run_record(ALICE, "resp_bg")
    assert record is not None and record.instance == "gw-1" and not record.cancel
    assert await other.run_record(BOB, "resp_bg") is None
    assert (await other.get(ALICE, "resp_bg")).response["status"] == "in_progress"  # type: ignore[union-attr]
    await store.save_run(ALICE, running("resp_bg", "completed"), numbered(5, 1), 5, end=True)
    assert await other.run_record(ALICE, "resp_bg") is None
    assert len(await other.run_events(ALICE, "resp_bg", -1)) == 6
    assert await store.runs_of("gw-1") == []
    assert await store.delete(ALICE, "resp_bg")
    assert await other.run_events(ALICE, "resp_bg", -1) == []


async def test_a_cancel_asked_anywhere_reaches_the_runner_heartbeat(make_store: MakeStore) -> None:
    runner, elsewhere = make_store(), make_store()
    await runner.save_run(ALICE, running("resp_a"), [], 0, begin="gw-1")
    await runner.save_run(ALICE, running("resp_b"), [], 0, begin="gw-1")
    before = (await runner.run_record(ALICE, "resp_a")).beat  # type: ignore[union-attr]
    assert await runner.beat("gw-1", [(ALICE, "resp_a"), (ALICE, "resp_b")]) == set()
    assert await elsewhere.request_cancel(BOB, "resp_a") is False  # not its owner's
    assert await elsewhere.request_cancel(ALICE, "resp_a") is True
    assert await elsewhere.request_cancel(ALICE, "resp_none") is False
    assert await runner.beat("gw-1", [(ALICE, "resp_a"), (ALICE, "resp_b")]) == {"resp_a"}
    assert (await runner.run_record(ALICE, "resp_a")).beat >= before  # type: ignore[union-attr]
    assert sorted(await elsewhere.runs_of("gw-1")) == [(ALICE, "resp_a"), (ALICE, "resp_b")]
    assert await elsewhere.runs_of("gw-2") == []


async def test_a_run_whose_heartbeat_stopped_is_failed_by_a_reader(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What BackgroundRuns does for a response whose instance never came back: failed, with its terminal event."""
    dead, reader = make_store(), make_store()
    await dead.save_run(ALICE, running("resp_left"), numbered(0, 3), 0, begin="gw-gone")
    runs = BackgroundRuns(reader, None, "gw-alive", 4, 60)
    assert await runs.settle(ALICE, "resp_left") is False  # its heartbeat is fresh
    assert await runs.settle(BOB, "resp_left") is False  # another owner's view: nothing there
    monkeypatch.setattr(background_runs, "LEASE_SECONDS", 0.0)
    assert await runs.settle(ALICE, "resp_left") is True
    failed = await reader.get(ALICE, "resp_left")
    assert failed is not None and failed.response["status"] == "failed"
    assert "stopped" in failed.response["error"]["message"]
    events = await reader.run_events(ALICE, "resp_left", 2)
    assert [(e["type"], e["sequence_number"]) for e in events] == [("response.failed", 3)]
    assert await reader.run_record(ALICE, "resp_left") is None and await reader.runs_of("gw-gone") == []
    assert await runs.settle(ALICE, "resp_left") is False  # once


async def test_a_restarted_instance_fails_the_runs_it_left(make_store: MakeStore) -> None:
    await make_store().save_run(ALICE, running("resp_mine"), numbered(0, 1), 0, begin="gw-1")
    await make_store().save_run(ALICE, running("resp_other"), numbered(0, 1), 0, begin="gw-2")
    store = make_store()
    runs = BackgroundRuns(store, None, "gw-1", 4, 60)
    await runs.start()
    try:
        assert (await store.get(ALICE, "resp_mine")).response["status"] == "failed"  # type: ignore[union-attr]
        assert (await store.get(ALICE, "resp_other")).response["status"] == "in_progress"  # type: ignore[union-attr]
    finally:
        await runs.shutdown()
