"""The response store in Redis (or Valkey): what several gateways behind a load balancer share.

Keys, all of one owner in one hash slot (`{owner}`), each expiring after CODEX_RESPONSES_TTL_DAYS:
- `codex-wrapper:{owner}:response:<id>`, a hash: response, input_items, conversation (JSON), items (ids, JSON);
- `codex-wrapper:{owner}:item:<id>`, a hash: response (the id that indexed it), item (JSON);
- `codex-wrapper:{owner}:events:<id>`, a list: a background response's stream events (index = sequence number);
- `codex-wrapper:{owner}:run:<id>`, a hash: instance, beat, cancel, while a background response runs;
- `codex-wrapper:instance:<instance>`, a set: "owner id" of the runs an instance has recorded (not expiring).
Writes and deletes are Lua scripts, so another instance never sees half of one.
"""

from __future__ import annotations

import json
import time
from typing import Any

import coredis
from coredis.commands import Script
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import RedisError
from coredis.retry import ConstantRetryPolicy
from coredis.typing import KeyT, ValueT

from app.store.base import (
    ResponseStore,
    RunRecord,
    StoredResponse,
    decode_conversation,
    encode_conversation,
    items_of,
)

PREFIX = "codex-wrapper"
# ARGV: ttl ms (0 = none), response id, response, input items, conversation, item ids, item key prefix,
# then item id and item JSON pairs. A response stored again first drops the items it indexed before.
_PUT = """
local old = redis.call('HGET', KEYS[1], 'items')
if old then
  for _, id in ipairs(cjson.decode(old)) do
    local key = ARGV[7] .. id
    if redis.call('HGET', key, 'response') == ARGV[2] then redis.call('DEL', key) end
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'response', ARGV[3], 'input_items', ARGV[4], 'conversation', ARGV[5], 'items', ARGV[6])
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
for i = 8, #ARGV, 2 do
  local key = ARGV[7] .. ARGV[i]
  redis.call('DEL', key)
  redis.call('HSET', key, 'response', ARGV[2], 'item', ARGV[i + 1])
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
return 1
"""
# ARGV: item key prefix, response id. An item a later response indexed again is that response's now.
_DELETE = """
local ids = redis.call('HGET', KEYS[1], 'items')
if not ids then return 0 end
for _, id in ipairs(cjson.decode(ids)) do
  local key = ARGV[1] .. id
  if redis.call('HGET', key, 'response') == ARGV[2] then redis.call('DEL', key) end
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""
# ARGV: ttl ms (0 = none), sequence number of the first event, then the events. An event already there (a
# retried write) is not added again.
_APPEND = """
local n = redis.call('LLEN', KEYS[1])
local first = tonumber(ARGV[2])
for i = 3, #ARGV do
  if first + i - 3 >= n then redis.call('RPUSH', KEYS[1], ARGV[i]) end
end
local ttl = tonumber(ARGV[1])
if ttl > 0 and n + #ARGV > 2 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
# ARGV: the time now. Renews a run's heartbeat if it is still recorded; its cancel flag.
_BEAT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'beat', ARGV[1])
return tonumber(redis.call('HGET', KEYS[1], 'cancel') or '0')
"""
_CANCEL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1')
return 1
"""


class RedisStore(ResponseStore):
    backend = "redis"
    errors = (RedisError, OSError, TimeoutError)

    def __init__(self, url: str, location: str, ttl_days: float, timeout: float) -> None:
        super().__init__(location, ttl_days)
        self.url = url
        self.timeout = timeout
        self._redis: coredis.Redis[str] | None = None  # made on first use, inside the running event loop
        self._scripts: dict[str, Script[str]] = {}

    def _client(self) -> coredis.Redis[str]:
        if self._redis is None:
            self._redis = coredis.Redis.from_url(
                self.url,
                decode_responses=True,
                connect_timeout=self.timeout,
                stream_timeout=self.timeout,
                # one retry, at once, for a pooled connection the server dropped (a Redis restart)
                retry_policy=ConstantRetryPolicy((RedisConnectionError,), 1, 0),
            )
            scripts = {"put": _PUT, "delete": _DELETE, "append": _APPEND, "beat": _BEAT, "cancel": _CANCEL}
            self._scripts = {name: self._redis.register_script(text) for name, text in scripts.items()}
        return self._redis

    def _key(self, owner: str, kind: str, name: str = "") -> str:
        return f"{PREFIX}:{{{owner}}}:{kind}:{name}"

    async def _put(self, owner: str, stored: StoredResponse) -> None:
        client, response_id = self._client(), stored.response["id"]
        items = items_of(stored)
        args: list[ValueT] = [
            round(self.ttl_seconds * 1000),
            response_id,
            json.dumps(stored.response),
            json.dumps(stored.input_items),
            encode_conversation(stored.conversation),
            json.dumps([item_id for item_id, _ in items]),
            self._key(owner, "item"),
        ]
        for item_id, item in items:
            args += [item_id, json.dumps(item)]
        await self._scripts["put"](keys=[self._key(owner, "response", response_id)], args=args, client=client)

    async def _get(self, owner: str, response_id: str) -> StoredResponse | None:
        fields = ("response", "input_items", "conversation")
        response, input_items, conversation = await self._client().hmget(
            self._key(owner, "response", response_id), fields
        )
        if response is None or input_items is None or conversation is None:
            return None
        return StoredResponse(json.loads(response), json.loads(input_items), decode_conversation(conversation))

    async def _delete(self, owner: str, response_id: str) -> bool:
        client = self._client()
        key, prefix = self._key(owner, "response", response_id), self._key(owner, "item")
        keys: list[KeyT] = [key, self._key(owner, "events", response_id)]
        return bool(await self._scripts["delete"](keys=keys, args=[prefix, response_id], client=client))

    async def _find_item(self, owner: str, item_id: str) -> dict[str, Any] | None:
        raw = await self._client().hget(self._key(owner, "item", item_id), "item")
        return json.loads(raw) if raw is not None else None

    async def _save_run(
        self,
        owner: str,
        stored: StoredResponse,
        events: list[dict[str, Any]],
        first: int,
        begin: str | None,
        end: bool,
    ) -> None:
        client, response_id = self._client(), stored.response["id"]
        run_key = self._key(owner, "run", response_id)
        if begin is not None:  # the run record first: a reader that sees the response sees who runs it
            await client.hset(run_key, {"instance": begin, "beat": str(time.time()), "cancel": "0"})
            await client.sadd(self._instance_key(begin), [f"{owner} {response_id}"])
        if events:  # before the snapshot: a reader that sees the response ended finds its terminal event
            args: list[ValueT] = [round(self.ttl_seconds * 1000), first, *(json.dumps(event) for event in events)]
            keys: list[KeyT] = [self._key(owner, "events", response_id)]
            await self._scripts["append"](keys=keys, args=args, client=client)
        await self._put(owner, stored)
        if end:
            instance = await client.hget(run_key, "instance")
            await client.delete([run_key])
            if instance is not None:
                await client.srem(self._instance_key(instance), [f"{owner} {response_id}"])

    def _instance_key(self, instance: str) -> str:
        return f"{PREFIX}:instance:{instance}"

    async def _run_events(self, owner: str, response_id: str, after: int) -> list[dict[str, Any]]:
        raw = await self._client().lrange(self._key(owner, "events", response_id), max(0, after + 1), -1)
        return [json.loads(event) for event in raw]

    async def _run_record(self, owner: str, response_id: str) -> RunRecord | None:
        instance, beat, cancel = await self._client().hmget(
            self._key(owner, "run", response_id), ("instance", "beat", "cancel")
        )
        if instance is None or beat is None:
            return None
        return RunRecord(instance, float(beat), cancel == "1")

    async def _request_cancel(self, owner: str, response_id: str) -> bool:
        client, keys = self._client(), (self._key(owner, "run", response_id),)
        return bool(await self._scripts["cancel"](keys=keys, args=[], client=client))

    async def _beat(self, instance: str, runs: list[tuple[str, str]]) -> set[str]:
        client, now, flagged = self._client(), str(time.time()), set()
        for owner, response_id in runs:
            keys: list[KeyT] = [self._key(owner, "run", response_id)]
            if await self._scripts["beat"](keys=keys, args=[now], client=client) == 1:
                flagged.add(response_id)
        return flagged

    async def _runs_of(self, instance: str) -> list[tuple[str, str]]:
        members = await self._client().smembers(self._instance_key(instance))
        return [tuple(member.split(" ", 1)) for member in members]  # type: ignore[misc]

    async def _probe(self, detail: bool) -> str:
        client = self._client()
        await client.ping()
        if not detail:
            return ""
        try:
            info = await client.info("server", "persistence", "memory")
        except RedisError:  # INFO may be disabled on a managed service: the PING answered
            return "answering PING"
        aof = "on" if str(info.get("aof_enabled")) == "1" else "off"
        policy = info.get("maxmemory_policy", "?")
        # the client decodes responses (decode_responses=True), but coredis types INFO's values as bytes too
        facts = f"version {info.get('redis_version', '?')}, appendonly {aof}, maxmemory-policy {policy}"  # type: ignore[str-bytes-safe]
        if str(policy).startswith("allkeys"):
            facts += " (stored responses can be evicted under memory pressure: prefer noeviction or volatile-*)"
        return facts

    async def close(self) -> None:
        if self._redis is not None:
            self._redis.connection_pool.disconnect()
            self._redis = None
