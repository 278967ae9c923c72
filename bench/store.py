"""The response store backends side by side: writes and previous_response_id reads per second, and what a Redis
round trip adds to a chained turn through the gateway.

Run by hand: `.venv/bin/python -m bench.store [--ops 2000] [--turns 40]`. Needs redis-server (`make test` installs
it). Prints figures; asserts nothing. Redis runs on 127.0.0.1 with the append-only file synced every second (its
default with persistence on, and the compose profile's); SQLite is a file in a temporary folder (WAL mode).
A stored response here is a realistic one: a ten-turn conversation (~4 kB of JSON) with its output items.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from app.store import RedisStore, ResponseStore, SqliteStore, StoredResponse
from app.turn import Message
from bench.latency import summary
from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, run_gateway, scratch_dir, write_codex_home
from tests.redis_server import RedisServer

OWNER = "f" * 64
CONCURRENCY = (1, 16)


def sample(n: int) -> StoredResponse:
    conversation = tuple(
        Message("user" if turn % 2 == 0 else "assistant", f"turn {turn}: " + "lorem ipsum dolor sit amet " * 12)
        for turn in range(10)
    )
    output = [{"id": f"msg_{n}", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": conversation[-1].text, "annotations": []}]}]  # fmt: skip
    inputs = [
        {"id": f"msg_in_{n}", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]}
    ]
    response = {"id": f"resp_{n}", "object": "response", "status": "completed", "model": FAKE_MODEL, "output": output}
    return StoredResponse(response, inputs, conversation)


async def rate(ops: int, concurrency: int, one: Callable[[int], Awaitable[object]]) -> tuple[float, list[float]]:
    """Operations per second with `concurrency` callers, and each operation's seconds."""
    times: list[float] = []
    queue = iter(range(ops))

    async def caller() -> None:
        for n in queue:
            start = time.perf_counter()
            await one(n)
            times.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return ops / (time.perf_counter() - start), times


async def measure_store(name: str, store: ResponseStore, ops: int) -> None:
    items = [sample(n) for n in range(ops)]
    for concurrency in CONCURRENCY:
        for n in range(ops):  # a fresh id space per round: writes are inserts, not replacements
            items[n].response["id"] = f"resp_{concurrency}_{n}"
        writes, write_times = await rate(ops, concurrency, lambda n: store.put(OWNER, items[n]))
        ids = [item.response["id"] for item in items]
        reads, read_times = await rate(ops, concurrency, lambda n, ids=ids: store.get(OWNER, ids[n]))
        finds, _ = await rate(ops, concurrency, lambda n: store.find_item(OWNER, f"msg_{n}"))
        print(
            f"{name:<7} concurrency {concurrency:>2}: {writes:8.0f} writes/s  {reads:8.0f} reads/s  "
            f"{finds:8.0f} item lookups/s   write p50 {statistics.median(write_times) * 1000:.2f} ms  "
            f"read p50 {statistics.median(read_times) * 1000:.2f} ms"
        )
    await store.close()


def chained_turns(provider: FakeProvider, root: Path, redis: RedisServer, turns: int) -> None:
    """The same chain of turns on two gateways, one per backend, requests alternating so both see the same load."""
    provider.script("default", Script(deltas=["po", "ng"]))
    home = write_codex_home(root / "home", provider.base_url)
    workdir = root / "work"
    workdir.mkdir()
    backends = {"sqlite": {}, "redis": {"CODEX_STORE_URL": redis.url}}
    with ExitStack() as stack:
        gateways = {
            name: stack.enter_context(run_gateway(home, workdir, root / f"gateway-{name}.log", **settings))
            for name, settings in backends.items()
        }
        clients = {
            name: stack.enter_context(httpx.Client(base_url=g.base_url, timeout=60)) for name, g in gateways.items()
        }
        previous: dict[str, str | None] = dict.fromkeys(backends)
        times: dict[str, list[float]] = {name: [] for name in backends}
        for turn in range(turns + 2):  # the first two warm each gateway up
            for name, client in clients.items():
                body = {"model": FAKE_MODEL, "input": f"turn {turn}", "previous_response_id": previous[name]}
                start = time.perf_counter()
                response = client.post("/v1/responses", json=body)
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                previous[name] = response.json()["id"]
                if turn >= 2:
                    times[name].append(elapsed)
        for name in backends:
            print(summary(f"chained turn, {name} store (app-server engine)", times[name]))
        added = statistics.median(times["redis"]) - statistics.median(times["sqlite"])
        print(f"redis minus sqlite, p50 of a chained turn: {added * 1000:+.1f} ms")


async def store_figures(root: Path, redis: RedisServer, ops: int) -> None:
    await measure_store("sqlite", SqliteStore(root / "responses.sqlite3", 30), ops)
    await measure_store("redis", RedisStore(redis.url, redis.url, 30, timeout=5), ops)
    # one turn that continues a conversation costs one read (previous_response_id) and one write
    for name, store in (
        ("sqlite", SqliteStore(root / "turns.sqlite3", 30)),
        ("redis", RedisStore(redis.url, "", 30, 5)),
    ):
        _, times = await rate(ops, 1, lambda n, s=store: _read_then_write(s, n))
        print(f"{name:<7} one read + one write, as a chained turn does: p50 {statistics.median(times) * 1000:.2f} ms")
        await store.close()


async def _read_then_write(store: ResponseStore, n: int) -> None:
    await store.get(OWNER, f"resp_{n - 1}")  # the previous turn's, stored by the call before
    await store.put(OWNER, sample(n))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000, help="operations per figure")
    parser.add_argument("--turns", type=int, default=40, help="chained turns per gateway")
    args = parser.parse_args()
    with scratch_dir() as tmp:
        root = Path(tmp)
        redis = RedisServer(root / "redis", appendfsync="everysec").start()
        provider = FakeProvider().start()
        try:
            asyncio.run(store_figures(root, redis, args.ops))
            chained_turns(provider, root, redis, args.turns)
        finally:
            provider.stop()
            redis.stop()


if __name__ == "__main__":
    main()
