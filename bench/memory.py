"""Memory over many requests through the app-server engine: threads must be released, nothing may grow.

Run by hand: `.venv/bin/python -m bench.memory --requests 2000`. Prints RSS of the gateway and of its Codex
processes as the requests go by; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from bench.engines import rss_mb
from tests.harness import FAKE_MODEL, REPO, codex_processes, run_gateway, scratch_dir, write_codex_home


async def drive(base_url: str, home: Path, gateway_pid: int, total: int, concurrency: int, mode: str) -> None:
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "memory"}], "x_codex": {"mode": mode}}
    started = finished = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def worker() -> None:
            nonlocal started, finished
            while started < total:
                started += 1
                (await client.post("/v1/chat/completions", json=body)).raise_for_status()
                finished += 1
                if finished % max(1, total // 10) == 0:
                    codex = codex_processes(home, pool=True)
                    print(
                        f"{mode:<6} after {finished:>6} requests: gateway {rss_mb([gateway_pid]):6.0f} MB, "
                        f"codex {rss_mb(codex):6.0f} MB in {len(codex)} processes",
                        flush=True,
                    )

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    provider = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO
    )
    assert provider.stdout is not None
    base_url = provider.stdout.readline().decode().strip()
    with scratch_dir() as tmp:
        root = Path(tmp)
        home = write_codex_home(root / "home", base_url)
        (root / "work").mkdir()
        for mode in ("chat", "agent"):
            settings = {"CODEX_MAX_PARALLEL_REQUESTS": str(args.concurrency)}
            with run_gateway(home, root / "work", root / f"{mode}.log", **settings) as gateway:
                asyncio.run(drive(gateway.base_url, home, gateway.process.pid, args.requests, args.concurrency, mode))
    provider.communicate(b"")


if __name__ == "__main__":
    main()
