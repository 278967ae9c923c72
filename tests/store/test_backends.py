"""What only one backend has: Redis outages and restarts, unix sockets; SQLite files from before the item index."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings
from app.store import RedisStore, SqliteStore, StoreUnavailable, open_store
from tests.harness import clean_environment
from tests.redis_server import RedisServer
from tests.store.test_contract import ALICE, stored


def settings_from(folder: Path, **env: str) -> Settings:
    """Settings as the server would load them from exactly `env` (plus a workdir and data folder in `folder`)."""
    defaults = {"CODEX_WORKDIR": str(folder / "work"), "CODEX_DATA_DIR": str(folder / "data")}
    with pytest.MonkeyPatch.context() as patch:
        for name in os.environ:
            patch.delenv(name)
        for name, value in clean_environment(**{**defaults, **env}).items():
            patch.setenv(name, value)
        return load_settings()


@pytest.fixture
def own_redis(tmp_path: Path) -> RedisServer:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def test_a_redis_outage_is_a_503_and_a_restart_keeps_the_data(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(own_redis.url, "redis://127.0.0.1", 30, timeout=1)
    await store.put(ALICE, stored("resp_1"))
    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="codex_wrapper")
    for call in (store.get(ALICE, "resp_1"), store.find_item(ALICE, "msg_in"), store.delete(ALICE, "resp_1")):
        with pytest.raises(StoreUnavailable) as caught:
            await call
        assert caught.value.status == 503
        assert caught.value.body()["error"]["code"] == "store_unavailable"
        assert "127.0.0.1" not in caught.value.message  # key holders are not told where the store is
    assert not store.up and (await store.health()).state == "unavailable"
    assert await store.keep(ALICE, stored("resp_2")) is False and store.write_failures == 1
    down = [r for r in caplog.records if "is unavailable" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(down) == 1  # once per outage, not once per request
    own_redis.start()  # same folder and port: the append-only file is read back
    assert (await store.get(ALICE, "resp_1")) == stored("resp_1")  # the pooled connection was dropped: retried
    assert await store.find_item(ALICE, "msg_out") is not None
    assert store.up and (await store.health()).state == "ok"
    assert any("available again" in r.getMessage() for r in caplog.records)
    assert await store.get(ALICE, "resp_2") is None  # it was answered, never stored
    await store.close()


async def test_a_unix_socket_url_works(redis_server: RedisServer, tmp_path: Path) -> None:
    url = f"unix://{redis_server.socket_path}?db=0"
    settings = settings_from(tmp_path, CODEX_STORE_URL=url)
    store = open_store(settings)
    assert isinstance(store, RedisStore)
    await store.put(ALICE, stored("resp_unix"))
    over_tcp = RedisStore(redis_server.url, redis_server.url, 30, timeout=2)
    assert await over_tcp.get(ALICE, "resp_unix") is not None
    assert settings.rate_limit_storage == f"redis+unix://{redis_server.socket_path}?db=0"
    await store.close()
    await over_tcp.close()


async def test_redis_keys_expire_with_the_ttl_and_live_forever_at_zero(redis_server: RedisServer) -> None:
    for ttl_days, expected in ((1, range(86_300_000, 86_400_001)), (0, [-1])):
        store = RedisStore(redis_server.url, redis_server.url, ttl_days, timeout=2)
        await store.put(ALICE, stored(f"resp_ttl{ttl_days}", output=f"msg_ttl{ttl_days}"))
        for key in (f"response:resp_ttl{ttl_days}", f"item:msg_ttl{ttl_days}"):
            reply = redis_server.command("PTTL", f"codex-wrapper:{{{ALICE}}}:{key}")
            assert int(reply[1:].strip()) in expected
        await store.close()


async def test_a_sqlite_file_from_before_the_item_index_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    old = stored("resp_old", inputs=("msg_old_in",), output="msg_old_out")
    with sqlite3.connect(path) as db:  # the schema and a row as the previous release wrote them
        db.execute(
            "CREATE TABLE responses (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at INTEGER NOT NULL, "
            "response TEXT NOT NULL, input_items TEXT NOT NULL, conversation TEXT NOT NULL)"
        )
        conversation = json.dumps([{"role": "user", "text": "question ✓"}, {"role": "assistant", "text": "answer"}])
        row = ("resp_old", ALICE, 2_000_000_000, json.dumps(old.response), json.dumps(old.input_items), conversation)
        db.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?)", row)
    store = SqliteStore(path, 30)
    assert await store.get(ALICE, "resp_old") == old
    assert await store.find_item(ALICE, "msg_old_in") == old.input_items[0]
    assert await store.find_item(ALICE, "msg_old_out") == old.response["output"][1]
    assert await SqliteStore(path, 30).find_item(ALICE, "msg_old_out") is not None  # opened again: no second pass


async def test_a_sqlite_failure_is_a_503_and_an_unusable_file_stops_startup(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    store = SqliteStore(path, 30)
    await store.put(ALICE, stored("resp_1"))
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE responses")
    with pytest.raises(StoreUnavailable):
        await store.get(ALICE, "resp_1")
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="cannot open the response store"):
        open_store(settings_from(tmp_path, CODEX_STORE_URL=f"sqlite://{broken}"))
