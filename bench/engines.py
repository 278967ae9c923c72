"""The engines side by side against the fake model: latency, time to first token, throughput, memory.

Run by hand: `make bench`. Prints a table; asserts nothing. The floor is a warm `codex app-server` driven
directly (a fresh thread per request, released before the next), started with the same arguments as the
gateway's workers and given the same thread parameters, but for the permission profile: in agent mode it runs
Codex's plain read-only sandbox. Within a mode every target is up at once and requests go round-robin, one at a time, so
each target is measured under the same machine load; throughput is measured one target after another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.codex.binary import CodexBinary, locate_codex
from app.config import Settings
from app.engines.app_server.dynamic_tools import TOOL_CALL_REQUEST
from app.engines.app_server.pool import CLIENT_INFO, WORKER_ARGS
from app.engines.app_server.refusals import refuse
from app.engines.app_server.rpc import RpcSession
from app.engines.app_server.translate import thread_params, turn_params
from app.policy.project_docs import DISCOVERY_OFF
from app.turn import Message, RunPolicy, ToolSpec, Turn
from bench.latency import time_exec
from tests.harness import (
    FAKE_MODEL,
    REPO,
    clean_environment,
    codex_processes,
    run_gateway,
    scratch_dir,
    write_codex_home,
)

DELTAS = 20
CONCURRENCY = (1, 4, 8)
# Throughput is measured against a model that takes time (20 deltas 10 ms apart, ~200 ms a reply), as real ones
# do: against an instant fake model every target is bound by the machine's two cores, not by overlapping turns.
PACED = "bench SCRIPT:paced"
# A tool round trip: the model calls the client's function; once its output is back, it answers.
TOOL_PROMPT = "bench SCRIPT:toolcall"
FLOOR = "app-server direct (floor)"
SEALING: dict[str, str] = {}  # what each gateway's log said about sealing its workers
TOOL = ToolSpec("get_weather", "The weather.", {"type": "object", "properties": {}})
CHAT_TOOL = {"type": "function", "function": {"name": TOOL.name, "parameters": TOOL.parameters}}


@dataclass
class Target:
    name: str
    mode: str
    home: Path
    call: Callable[[str], Awaitable[None]] = field(repr=False)
    stream: Callable[[], Awaitable[tuple[float, float, int]]] = field(repr=False)
    pid: int = 0
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    stream_total: list[float] = field(default_factory=list)
    deltas: int = 0
    rps: dict[int, float] = field(default_factory=dict)
    peak_mb: float = 0.0
    tool_trip: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    tool_latency: list[float] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class PeakMemory:
    """Samples the RSS of each target (its process plus every process of its CODEX_HOME) while it runs."""

    def __init__(self, targets: list[Target]) -> None:
        self.targets = targets
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for t in self.targets:
                t.peak_mb = max(t.peak_mb, rss_mb([t.pid, *codex_processes(t.home, pool=True)]))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def gateway_target(name: str, mode: str, home: Path, base_url: str, pid: int, client: httpx.AsyncClient) -> Target:
    def body(prompt: str) -> dict:
        return {"model": FAKE_MODEL, "messages": [{"role": "user", "content": prompt}], "x_codex": {"mode": mode}}

    async def call(prompt: str) -> None:
        (await client.post(f"{base_url}/v1/chat/completions", json=body(prompt))).raise_for_status()

    async def stream() -> tuple[float, float, int]:
        start, first, deltas = time.perf_counter(), 0.0, 0
        async with client.stream("POST", f"{base_url}/v1/chat/completions", json={**body("b"), "stream": True}) as r:
            async for line in r.aiter_lines():
                if '"content":"tok' in line:
                    deltas += 1
                    first = first or time.perf_counter()
        return (first or time.perf_counter()) - start, time.perf_counter() - start, deltas

    async def tool_trip() -> None:
        """The client's side of a tool loop: ask, get the call, send its output, get the answer."""
        messages: list[dict] = [{"role": "user", "content": TOOL_PROMPT}]
        ask = {**body(TOOL_PROMPT), "tools": [CHAT_TOOL]}
        first = (await client.post(f"{base_url}/v1/chat/completions", json=ask)).raise_for_status().json()
        message = first["choices"][0]["message"]
        results = [{"role": "tool", "tool_call_id": c["id"], "content": "21C"} for c in message["tool_calls"]]
        ask["messages"] = [*messages, message, *results]
        final = (await client.post(f"{base_url}/v1/chat/completions", json=ask)).raise_for_status().json()
        assert final["choices"][0]["message"]["content"].startswith("tok0")

    return Target(name, mode, home, call, stream, pid, tool_trip=tool_trip)


def floor_params(turn: Turn) -> dict[str, Any]:
    """The gateway's thread parameters without its permission profile (and what comes with it): the floor is a
    bare app-server, with Codex's plain read-only sandbox and its own AGENTS.md discovery."""
    params = thread_params(turn)
    if params.pop("permissions", None) is not None:
        params["sandbox"] = turn.policy.sandbox
        params["config"] = {
            k: v for k, v in params["config"].items() if not k.startswith("permissions.") and k not in DISCOVERY_OFF
        }
    return params


async def floor_target(mode: str, home: Path, codex: CodexBinary, workdir: Path) -> tuple[Target, Callable]:
    env = {**clean_environment(CODEX_HOME=str(home)), **codex.extra_env}
    proc = await asyncio.create_subprocess_exec(
        str(codex.path), *WORKER_ARGS, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env, limit=64 * 1024 * 1024,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    session = RpcSession(proc.stdout, proc.stdin, refuse)
    session.start()
    await session.request("initialize", {"clientInfo": CLIENT_INFO, "capabilities": {"experimentalApi": True}})
    await session.notify("initialized")
    turn = Turn(FAKE_MODEL, (Message("user", "b"),), RunPolicy("read-only", "medium", False, workdir, mode=mode))

    async def turn_once(prompt: str) -> tuple[float, float, int]:
        start, first, deltas = time.perf_counter(), 0.0, 0
        thread_id = (await session.request("thread/start", floor_params(turn)))["thread"]["id"]
        queue = session.subscribe(thread_id)
        await session.request("turn/start", turn_params(thread_id, Message("user", prompt), turn))
        while (message := await queue.get()) is not None and message.get("method") != "turn/completed":
            if message.get("method") == "item/agentMessage/delta":
                deltas += 1
                first = first or time.perf_counter()
        end = time.perf_counter()
        session.unsubscribe(thread_id)
        await session.request("thread/unsubscribe", {"threadId": thread_id})
        return (first or end) - start, end - start, deltas

    async def call(prompt: str) -> None:
        await turn_once(prompt)

    async def tool_trip() -> None:
        """The same loop on one app-server turn: the turn waits for the call's answer, then goes on."""
        tools_turn = Turn(FAKE_MODEL, (Message("user", TOOL_PROMPT),), turn.policy, tools=(TOOL,))
        thread_id = (await session.request("thread/start", floor_params(tools_turn)))["thread"]["id"]
        queue = session.subscribe(thread_id, (TOOL_CALL_REQUEST,))
        await session.request("turn/start", turn_params(thread_id, Message("user", TOOL_PROMPT), tools_turn))
        while (message := await queue.get()) is not None and message.get("method") != "turn/completed":
            if message.get("method") == TOOL_CALL_REQUEST:
                answer = {"contentItems": [{"type": "inputText", "text": "21C"}], "success": True}
                await session.respond(thread_id, message["id"], answer)
        session.unsubscribe(thread_id)
        await session.request("thread/unsubscribe", {"threadId": thread_id})

    async def close() -> None:
        await session.close()
        proc.kill()
        await proc.wait()

    floor = Target(FLOOR, mode, home, call, lambda: turn_once("b"), proc.pid, tool_trip=tool_trip)
    return floor, close


async def timed(call: Awaitable[None]) -> float:
    start = time.perf_counter()
    await call
    return time.perf_counter() - start


async def throughput(call: Callable[[str], Awaitable[None]], concurrency: int, total: int) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call(PACED)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def measure(targets: list[Target], requests: int) -> None:
    for t in targets:  # warm up
        await t.call("b")
    with PeakMemory(targets):
        for i in range(requests):
            for t in targets[i % len(targets) :] + targets[: i % len(targets)]:
                t.latency.append(await timed(t.call("b")))
        for i in range(requests):
            for t in targets[i % len(targets) :] + targets[: i % len(targets)]:
                first, total, t.deltas = await t.stream()
                t.ttft.append(first)
                t.stream_total.append(total)
        for t in targets:
            for concurrency in CONCURRENCY:
                t.rps[concurrency] = await throughput(t.call, concurrency, requests * 2)
        tooled = [t for t in targets if t.tool_trip is not None and t.name in ("gateway app-server", FLOOR)]
        for i in range(requests):
            for t in tooled[i % len(tooled) :] + tooled[: i % len(tooled)]:
                assert t.tool_trip is not None
                t.tool_latency.append(await timed(t.tool_trip()))


GATEWAYS = {
    "gateway app-server": {"CODEX_ENGINE": "app-server"},
    "gateway exec": {"CODEX_ENGINE": "exec"},
    "gateway app-server 1 worker 1 turn": {"CODEX_APP_SERVER_WORKERS": "1", "CODEX_MAX_PARALLEL_REQUESTS": "1"},
}


async def run_mode(mode: str, root: Path, base_url: str, codex: CodexBinary, requests: int) -> list[Target]:
    workdir = root / "work"
    floor, close = await floor_target(mode, write_codex_home(root / f"{mode}-floor", base_url), codex, workdir)
    targets = [floor]
    names = [n for n in GATEWAYS if mode == "chat" or "1 worker" not in n]
    with contextlib.ExitStack() as stack:
        client = httpx.AsyncClient(timeout=60)
        for name in names:
            home = write_codex_home(root / f"{mode}-{name}".replace(" ", "-"), base_url)
            settings = {"CODEX_MAX_PARALLEL_REQUESTS": "8", "CODEX_MAX_QUEUE": "64", **GATEWAYS[name]}
            log = root / f"{home.name}.log"
            gateway = stack.enter_context(run_gateway(home, workdir, log, CODEX_MODE=mode, **settings))
            targets.append(gateway_target(name, mode, home, gateway.base_url, gateway.process.pid, client))
            seal = [line.split("codex_wrapper: ", 1)[-1] for line in log.read_text().splitlines() if "sealed" in line]
            SEALING[f"{name}, {mode}"] = seal[-1] if seal else "exec engine: the permission profile"
        await measure(targets, requests)
        await client.aclose()
    await close()
    return targets


def print_table(rows: list[Target]) -> None:
    floors = {row.mode: row for row in rows if "floor" in row.name}
    header = (
        f"{'target':<36}{'mode':<6}{'p50':>7}{'p90':>7}{'xfloor':>7}{'ttft50':>8}{'xfloor':>7}{'total50':>8}"
        f"{'deltas':>7}" + "".join(f"{f'rps@{c}':>8}" for c in CONCURRENCY) + f"{'peakMB':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        floor = floors.get(row.mode)
        ratio = pct(row.latency, 0.5) / pct(floor.latency, 0.5) if floor else float("nan")
        ttft_ratio = pct(row.ttft, 0.5) / pct(floor.ttft, 0.5) if floor and row.ttft else float("nan")
        print(
            f"{row.name:<36}{row.mode:<6}{pct(row.latency, 0.5):7.1f}{pct(row.latency, 0.9):7.1f}{ratio:7.2f}"
            f"{pct(row.ttft, 0.5):8.1f}{ttft_ratio:7.2f}{pct(row.stream_total, 0.5):8.1f}{row.deltas:7d}"
            + "".join(f"{row.rps.get(c, float('nan')):8.1f}" for c in CONCURRENCY)
            + f"{row.peak_mb:8.0f}"
        )
    print("ms against an instant fake model (p50/p90 non-stream; ttft/total: streaming); rps: requests/s at that")
    print(
        "concurrency against a fake model taking ~200 ms a reply; peakMB: the target's process and its Codex processes"
    )


def print_tool_table(rows: list[Target]) -> None:
    """The tool round trip: the gateway ends the turn at the call (two HTTP requests, two threads); the floor
    keeps one app-server turn waiting for the answer."""
    floors = {row.mode: row for row in rows if "floor" in row.name}
    print()
    print(f"{'tool round trip (call, then answer)':<36}{'mode':<6}{'p50':>7}{'p90':>7}{'xfloor':>7}")
    for row in rows:
        if not row.tool_latency:
            continue
        floor = floors[row.mode]
        ratio = pct(row.tool_latency, 0.5) / pct(floor.tool_latency, 0.5)
        p50, p90 = pct(row.tool_latency, 0.5), pct(row.tool_latency, 0.9)
        print(f"{row.name:<36}{row.mode:<6}{p50:7.1f}{p90:7.1f}{ratio:7.2f}")
    print("ms for the whole loop against an instant fake model (gateway: 2 requests; floor: 1 turn answered in place)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    provider = subprocess.Popen(  # the fake model in its own process: it shares no interpreter with the client
        [
            sys.executable,
            "-m",
            "tests.fakes.serve",
            f"default={DELTAS}x0",
            f"paced={DELTAS}x0.01",
            "toolcall=call:get_weather",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert provider.stdout is not None
    base_url = provider.stdout.readline().decode().strip()
    rows: list[Target] = []
    with scratch_dir() as tmp:
        root = Path(tmp)
        (root / "work").mkdir()
        codex = locate_codex(Settings(_env_file=None, codex_workdir=root / "work"))
        for mode in ("chat", "agent"):
            rows += asyncio.run(run_mode(mode, root, base_url, codex, args.requests))
        raw = Target("raw codex exec (by hand)", "agent", root, None, None)  # type: ignore[arg-type]
        raw.latency = time_exec(str(codex.path), write_codex_home(root / "raw", base_url), root / "work", args.requests)
        rows.append(raw)
    provider.communicate(b"")
    print_table(rows)
    best = next(r for r in rows if r.name == "gateway app-server" and r.mode == "chat")
    single = next(r for r in rows if "1 worker" in r.name)
    print(f"throughput at concurrency 8, gateway app-server vs 1 worker/1 turn: {best.rps[8] / single.rps[8]:.2f}x")
    agent, chat = (next(r for r in rows if r.name == "gateway app-server" and r.mode == m) for m in ("agent", "chat"))
    print(f"agent mode at concurrency 8 vs chat mode (gateway app-server): {agent.rps[8] / chat.rps[8]:.2f}x")
    print(f"agent turns on the app-server gateway: {SEALING.get('gateway app-server, agent', 'unknown')}")
    print_tool_table(rows)
    print(f"(median of {statistics.median([len(r.latency) for r in rows]):.0f} requests per target)")


if __name__ == "__main__":
    main()
