"""Faults the other suites do not cover: shutdown with turns running, an unusable CODEX_HOME.

Covered elsewhere, on both engines: provider 500/429 (tests/integration/test_chat.py), a hang and CODEX_TIMEOUT,
client disconnects and the provider seeing its connection closed (test_lifecycle.py), a stream dropped midway
(test_chat.py, test_responses.py), a killed app-server worker and a pool that cannot start (test_app_server.py),
a missing binary (test_api_surface.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, REPO, RunningGateway, clean_environment, codex_processes
from tests.reliability.conftest import record

StartGateway = Callable[..., RunningGateway]


def test_sigterm_with_turns_running_leaves_nothing(
    start_gateway: StartGateway, provider: FakeProvider, engine: str
) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine, CODEX_SHUTDOWN_GRACE_SECONDS="2", CODEX_TIMEOUT="60")
    marker = provider.script(f"hang-sigterm-{engine}", Script(hang=True))
    outcomes: list[str] = []

    def ask() -> None:
        body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]}
        try:
            response = httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30)
            outcomes.append(str(response.status_code))
        except httpx.HTTPError as exc:
            outcomes.append(type(exc).__name__)

    clients = [threading.Thread(target=ask) for _ in range(3)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 15
    while sum(marker in json.dumps(b) for b in provider.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    gateway.process.send_signal(signal.SIGTERM)
    code = gateway.process.wait(timeout=20)
    took = time.monotonic() - started
    for client in clients:
        client.join(10)
    assert not any(client.is_alive() for client in clients)  # every caller got an answer or a closed connection
    # no orphan, not a turn, not a worker: the gateway waited for them before it exited
    assert codex_processes(gateway.codex_home, pool=True) == []
    record(f"sigterm with 3 turns running ({engine})", exit_code=code, seconds_to_exit=round(took, 2), clients=outcomes)


def startup(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = clean_environment(CODEX_WORKDIR=str(tmp_path / "w"), CODEX_DATA_DIR=str(tmp_path / "d"), **settings)
    env["CODEX_WRAPPER_PROFILE_DIR"] = str(tmp_path / "no-profile")
    return subprocess.run(
        [sys.executable, "-m", "app", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_an_unusable_codex_home_stops_startup_with_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "home-file"
    not_a_dir.write_text("I am a file")
    broken = tmp_path / "home-broken"
    (broken / "config.toml").mkdir(parents=True)  # a directory where Codex's config file should be
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "codex_config.toml").write_text('model = "m"\n')
    cases = {
        "CODEX_HOME is a file": startup(tmp_path, CODEX_CONFIG_DIR=str(not_a_dir)),
        "config.toml unreadable": startup(tmp_path, CODEX_CONFIG_DIR=str(broken)),
    }
    for name, done in cases.items():
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (name, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("codex-wrapper: "), (name, lines)
    record("unusable CODEX_HOME", **{name: done.stderr.strip() for name, done in cases.items()})
