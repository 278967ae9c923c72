"""What an agent turn costs the machine, in figures that hold on a loaded host: CPU time and helper launches.

Run by hand: `.venv/bin/python -m bench.agent_cost`. For each mode a gateway with one app-server worker serves
sequential requests; the worker's CPU time (its own and its reaped children's: utime+stime+cutime+cstime from
/proc) is read before and after, once its spare threads are refilled. With strace installed, a second pass counts
the programs Codex starts (execve), and how many of them are its sandboxed filesystem helper. Last, requests at
concurrency 8 against a ~200 ms model show how often a request found a spare thread. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.harness import FAKE_MODEL, REPO, app_server_workers, run_gateway, scratch_dir, write_codex_home

FS_HELPER = "--codex-run-as-fs-helper"


def cpu_seconds(pid: int) -> float:
    """utime+stime of `pid` and of its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / 100  # fields 14-17 of stat(5), in clock ticks (USER_HZ=100)


def settled_cpu(pid: int, quiet: float = 0.6, timeout: float = 20.0) -> float:
    """The worker's CPU time once it has used none for `quiet` seconds (its spare threads refilled)."""
    deadline = time.monotonic() + timeout
    last, since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def spares(base_url: str) -> tuple[int, int]:
    detail = httpx.get(f"{base_url}/ready", timeout=10).json().get("detail", "")
    found = re.search(r"spare threads used (\d+), missed (\d+)", detail)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def ask(client: httpx.Client, base_url: str, mode: str, prompt: str = "b") -> None:
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": prompt}], "x_codex": {"mode": mode}}
    client.post(f"{base_url}/v1/chat/completions", json=body).raise_for_status()


# `agent-unsandboxed`: agent mode without any profile or sandbox (danger-full-access), for its floor.
EXTRA = {"agent-unsandboxed": {"CODEX_SANDBOX_MODE": "danger-full-access", "CODEX_ALLOW_DANGER_FULL_ACCESS": "1"}}


def run(name: str, root: Path, base_url: str, requests: int) -> dict[str, float]:
    mode = name.split("-")[0]
    home = write_codex_home(root / f"{name}-home", base_url)
    settings = {"CODEX_APP_SERVER_WORKERS": "1", "CODEX_MAX_PARALLEL_REQUESTS": "8", "CODEX_MAX_QUEUE": "64"}
    settings.update(EXTRA.get(name, {}))
    figures: dict[str, float] = {}
    with (
        run_gateway(home, root / "work", root / f"{name}.log", CODEX_MODE=mode, **settings) as gateway,
        httpx.Client(timeout=60) as client,
    ):
        (worker,) = app_server_workers(home)
        for _ in range(3):
            ask(client, gateway.base_url, mode)
        before = settled_cpu(worker)
        hits0, misses0 = spares(gateway.base_url)
        start = time.perf_counter()
        for _ in range(requests):
            ask(client, gateway.base_url, mode)
        figures["seq ms/req"] = (time.perf_counter() - start) * 1000 / requests
        figures["cpu ms/req"] = (settled_cpu(worker) - before) * 1000 / requests
        hits, misses = spares(gateway.base_url)
        figures["seq spare misses"] = misses - misses0
        figures["seq requests"] = hits + misses - hits0 - misses0
        if shutil.which("strace"):
            figures.update(launches(worker, client, gateway.base_url, name, root, max(5, requests // 4)))
        hits0, misses0 = spares(gateway.base_url)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: ask(client, gateway.base_url, mode, "bench SCRIPT:paced"), range(requests * 2)))
        hits, misses = spares(gateway.base_url)
        figures["c8 spare misses"] = misses - misses0
        figures["c8 requests"] = hits + misses - hits0 - misses0
    return figures


def launches(worker: int, client: httpx.Client, base_url: str, name: str, root: Path, n: int) -> dict[str, float]:
    """Programs the worker starts per request (thread/start of its refill included), counted with strace."""
    mode = name.split("-")[0]
    out = root / f"{name}-strace.txt"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(out), "-p", str(worker)])
    try:
        time.sleep(1.0)  # strace attaches asynchronously
        settled_cpu(worker)
        for _ in range(n):
            ask(client, base_url, mode)
        settled_cpu(worker)
    finally:
        tracer.terminate()
        tracer.wait()
    lines = [line for line in out.read_text().splitlines() if "execve(" in line and "= 0" in line]
    helpers = [line for line in lines if FS_HELPER in line]
    return {"execs/req": len(lines) / n, "fs-helpers/req": len(helpers) / n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--modes", default="agent,chat,agent-unsandboxed")
    parser.add_argument("--keep", type=Path, help="copy the strace logs here")
    args = parser.parse_args()
    provider = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", "default=20x0", "paced=20x0.01"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert provider.stdout is not None
    base_url = provider.stdout.readline().decode().strip()
    rows: dict[str, dict[str, float]] = {}
    try:
        with scratch_dir() as tmp:
            root = Path(tmp)
            (root / "work").mkdir()
            (root / "work" / "AGENTS.md").write_text("Answer briefly.\n")
            for name in args.modes.split(","):
                rows[name] = run(name, root, base_url, args.requests)
            if args.keep:
                for log in root.glob("*-strace.txt"):
                    shutil.copy(log, args.keep)
    finally:
        provider.communicate(b"")
    keys = list(next(iter(rows.values())))
    print(f"{'mode':<18}" + "".join(f"{k:>17}" for k in keys))
    for name, figures in rows.items():
        print(f"{name:<18}" + "".join(f"{figures.get(k, float('nan')):17.1f}" for k in keys))
    print("1 app-server worker; cpu: the worker and its reaped children per request, spare refill included;")
    print("execs/fs-helpers: programs the worker started per request (strace); spare misses of that many requests")


if __name__ == "__main__":
    main()
