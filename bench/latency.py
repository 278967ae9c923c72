"""Non-stream latency of the gateway's exec engine beside the same `codex exec` run by hand (fake provider).

Run by hand: `.venv/bin/python -m bench.latency --requests 20`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from app.codex.binary import locate_codex
from app.config import Settings
from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, REPO, clean_environment, run_gateway, scratch_dir, write_codex_home


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"{name:<44} n={len(ms):<4} p50={statistics.median(ms):7.1f} ms  p90={p90:7.1f} ms  min={ms[0]:7.1f} ms"


def time_exec(argv0: str, home: Path, workdir: Path, runs: int) -> list[float]:
    env = clean_environment(CODEX_HOME=str(home))
    argv = [argv0, "exec", "--json", "--skip-git-repo-check", "--ephemeral", "--color", "never"]
    argv += ["--sandbox", "read-only", "--cd", str(workdir), "--model", FAKE_MODEL, "-"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, input=b"say pong", capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - start)
        assert b"turn.completed" in done.stdout, done.stderr[-500:]
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    provider = FakeProvider().start()
    provider.script("default", Script(deltas=["po", "ng"]))
    with scratch_dir() as tmp:
        root = Path(tmp)
        home = write_codex_home(root / "home", provider.base_url)
        workdir = root / "work"
        workdir.mkdir()
        launcher = str(REPO / "node_modules" / ".bin" / "codex")
        native = str(locate_codex(Settings(codex_path=launcher)).path)
        print(summary("codex exec by hand (npm launcher)", time_exec(launcher, home, workdir, args.requests)))
        print(summary("codex exec by hand (native binary)", time_exec(native, home, workdir, args.requests)))
        with (
            run_gateway(home, workdir, root / "gateway.log", CODEX_ENGINE="exec") as gateway,
            gateway.client() as client,
        ):
            client.chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "warm"}])
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                client.chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "say pong"}])
                times.append(time.perf_counter() - start)
            print(summary("gateway non-stream (exec engine, openai SDK)", times))
    provider.stop()


if __name__ == "__main__":
    main()
