"""The engines side by side against the fake provider: latency, time to first token, throughput, memory.

Run by hand: `make bench`. Prints a table; asserts nothing. The floor is a warm `codex app-server` driven
directly (a fresh thread per request), the same mode as the row it is compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.codex_cli import locate_codex
from app.config import Settings
from app.engines.app_server import CLIENT_INFO, thread_params, turn_params
from app.engines.refusals import refuse
from app.engines.rpc import RpcSession
from app.turn import Message, RunPolicy, Turn
from bench.latency import time_exec
from tests.harness import FAKE_MODEL, REPO, clean_environment, codex_processes, run_gateway, write_codex_home

DELTAS = [f"tok{n} " for n in range(20)]
CONCURRENCY = (1, 4, 8)
# Throughput is measured against a model that takes time (20 deltas 10 ms apart, ~200 ms a reply), as real ones do:
# with an instant fake model every row is bound by the two CPU cores, not by how well turns overlap.
PACED = "bench SCRIPT:paced"


@dataclass
class Row:
    name: str
    mode: str
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    stream_total: list[float] = field(default_factory=list)
    deltas: int = 0
    rps: dict[int, float] = field(default_factory=dict)
    peak_mb: float = 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class PeakMemory:
    """Samples the RSS of a process and of every process of a CODEX_HOME while it runs."""

    def __init__(self, pid: int | None, home: Path) -> None:
        self.pids = [pid] if pid else []
        self.home = home
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pids + codex_processes(self.home, pool=True)))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def throughput(call: Callable[[], Awaitable[object]], concurrency: int, total: int) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def measure_gateway(row: Row, base_url: str, requests: int) -> None:
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "bench"}]}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def one() -> None:
            response = await client.post("/v1/chat/completions", json=body)
            response.raise_for_status()

        await one()
        for _ in range(requests):
            start = time.perf_counter()
            await one()
            row.latency.append(time.perf_counter() - start)
        for _ in range(requests):
            start, first, deltas = time.perf_counter(), None, 0
            async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {") and '"content":"tok' in line:
                        deltas += 1
                        first = first or time.perf_counter()
            row.ttft.append((first or time.perf_counter()) - start)
            row.stream_total.append(time.perf_counter() - start)
            row.deltas = deltas
        paced = {**body, "messages": [{"role": "user", "content": PACED}]}

        async def paced_one() -> None:
            (await client.post("/v1/chat/completions", json=paced)).raise_for_status()

        for concurrency in CONCURRENCY:
            row.rps[concurrency] = await throughput(paced_one, concurrency, requests * 2)


async def measure_floor(row: Row, codex: Path, env: dict[str, str], workdir: Path, requests: int) -> None:
    """A warm app-server driven directly: a fresh thread per request (with the gateway's thread settings),
    deltas read as they come, the thread released before the next."""
    proc = await asyncio.create_subprocess_exec(
        str(codex), "app-server", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env, limit=64 * 1024 * 1024,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    session = RpcSession(proc.stdout, proc.stdin, refuse)
    session.start()
    await session.request("initialize", {"clientInfo": CLIENT_INFO, "capabilities": {"experimentalApi": True}})
    await session.notify("initialized")
    policy = RunPolicy("read-only", "medium", False, workdir, mode=row.mode)
    turn = Turn(FAKE_MODEL, (Message("user", "bench"),), policy)

    async def one(stream_stats: list[float] | None = None, prompt: str = "bench") -> None:
        start = time.perf_counter()
        thread_id = (await session.request("thread/start", thread_params(turn)))["thread"]["id"]
        queue = session.subscribe(thread_id)
        await session.request("turn/start", turn_params(thread_id, prompt, turn))
        first, deltas = None, 0
        while True:
            message = await queue.get()
            assert message is not None
            if message.get("method") == "item/agentMessage/delta":
                deltas += 1
                first = first or time.perf_counter()
            if message.get("method") == "turn/completed":
                break
        session.unsubscribe(thread_id)
        await session.request("thread/unsubscribe", {"threadId": thread_id})
        if stream_stats is not None:
            stream_stats += [(first or time.perf_counter()) - start, time.perf_counter() - start, deltas]

    with PeakMemory(proc.pid, Path(env["CODEX_HOME"])) as memory:
        await one()
        for _ in range(requests):
            start = time.perf_counter()
            await one()
            row.latency.append(time.perf_counter() - start)
        for _ in range(requests):
            stats: list[float] = []
            await one(stats)
            row.ttft.append(stats[0])
            row.stream_total.append(stats[1])
            row.deltas = int(stats[2])
        for concurrency in CONCURRENCY:
            row.rps[concurrency] = await throughput(lambda: one(prompt=PACED), concurrency, requests * 2)
    row.peak_mb = memory.peak
    proc.stdin.close()
    await session.close()
    proc.kill()
    await proc.wait()


def run_gateway_row(row: Row, root: Path, home: Path, workdir: Path, requests: int, **settings: str) -> None:
    log = root / f"{row.name}-{row.mode}.log".replace(" ", "_")
    with run_gateway(home, workdir, log, CODEX_MODE=row.mode, **settings) as gateway:
        with PeakMemory(gateway.process.pid, home) as memory:
            asyncio.run(measure_gateway(row, gateway.base_url, requests))
        row.peak_mb = memory.peak


def print_table(rows: list[Row], floors: dict[str, Row]) -> None:
    header = (
        f"{'engine':<34}{'mode':<6}{'p50':>7}{'p90':>7}{'xfloor':>7}{'ttft50':>8}{'xfloor':>7}{'total50':>8}"
        f"{'deltas':>7}" + "".join(f"{f'rps@{c}':>8}" for c in CONCURRENCY) + f"{'peakMB':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        floor = floors.get(row.mode)
        ratio = pct(row.latency, 0.5) / pct(floor.latency, 0.5) if floor and row.latency else float("nan")
        ttft_ratio = pct(row.ttft, 0.5) / pct(floor.ttft, 0.5) if floor and row.ttft else float("nan")
        print(
            f"{row.name:<34}{row.mode:<6}{pct(row.latency, 0.5):7.1f}{pct(row.latency, 0.9):7.1f}{ratio:7.2f}"
            f"{pct(row.ttft, 0.5):8.1f}{ttft_ratio:7.2f}{pct(row.stream_total, 0.5):8.1f}{row.deltas:7d}"
            + "".join(f"{row.rps.get(c, float('nan')):8.1f}" for c in CONCURRENCY)
            + f"{row.peak_mb:8.0f}"
        )
    print("times in ms against an instant fake model; ttft = time to first token (streaming); rps = requests/s")
    print("at that concurrency against a fake model that takes ~200 ms a reply; peakMB = gateway + Codex processes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    # the fake model runs in its own process, so it does not share the benchmark client's interpreter
    provider = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", f"default={len(DELTAS)}x0", f"paced={len(DELTAS)}x0.01"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert provider.stdout is not None
    base_url = provider.stdout.readline().decode().strip()
    rows: list[Row] = []
    floors: dict[str, Row] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = write_codex_home(root / "home", base_url)
        workdir = root / "work"
        workdir.mkdir()
        codex = locate_codex(Settings(_env_file=None, codex_workdir=workdir))
        env = {**clean_environment(CODEX_HOME=str(home)), **codex.extra_env}
        for mode in ("chat", "agent"):
            floors[mode] = Row("app-server direct (floor)", mode)
            asyncio.run(measure_floor(floors[mode], codex.path, env, workdir, args.requests))
            rows.append(floors[mode])
            for engine in ("app-server", "exec"):
                row = Row(f"gateway {engine}", mode)
                settings = {"CODEX_ENGINE": engine, "CODEX_MAX_PARALLEL_REQUESTS": "8", "CODEX_MAX_QUEUE": "64"}
                run_gateway_row(row, root, home, workdir, args.requests, **settings)
                rows.append(row)
        single = Row("gateway app-server 1 worker 1 turn", "chat")
        settings = {"CODEX_APP_SERVER_WORKERS": "1", "CODEX_MAX_PARALLEL_REQUESTS": "1", "CODEX_MAX_QUEUE": "64"}
        run_gateway_row(single, root, home, workdir, args.requests, **settings)
        rows.append(single)
        raw = Row("raw codex exec (by hand)", "agent")
        raw.latency = time_exec(str(codex.path), home, workdir, args.requests)
        rows.append(raw)
    provider.communicate(b"")
    print_table(rows, floors)
    best = next(r for r in rows if r.name == "gateway app-server" and r.mode == "chat")
    print(f"throughput at concurrency 8 vs 1 worker/1 turn: {best.rps[8] / single.rps[8]:.2f}x")


if __name__ == "__main__":
    main()
