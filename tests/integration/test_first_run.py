"""What a newcomer meets first: a CODEX_HOME Codex cannot use, a sandbox that does not work, the health check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.fakes.provider import FakeProvider
from tests.harness import FAKE_MODEL, REPO, RunningGateway, clean_environment, write_codex_home

StartGateway = Callable[..., RunningGateway]
HELLO = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
BWRAP_DENIED = "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged"


def codex_without_sandbox(tmp_path: Path) -> Path:
    """The real Codex, except that `codex sandbox` fails as bubblewrap does under Docker's default seccomp."""
    real = REPO / "node_modules" / ".bin" / "codex"
    fake = tmp_path / "codex"
    fake.write_text(
        f'#!/bin/sh\nif [ "$1" = sandbox ]; then echo "{BWRAP_DENIED}" >&2; exit 1; fi\nexec "{real}" "$@"\n'
    )
    fake.chmod(0o755)
    return fake


def test_the_real_sandbox_is_probed_at_startup(gateway: RunningGateway) -> None:
    with gateway.http() as http:
        ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["sandbox"] == "a sandboxed command ran and its write was blocked (read-only)"


def test_agent_mode_is_refused_by_name_without_a_sandbox(
    start_gateway: StartGateway, tmp_path: Path, provider: FakeProvider
) -> None:
    gateway = start_gateway(CODEX_PATH=str(codex_without_sandbox(tmp_path)))
    before = len(provider.requests)
    with gateway.http() as http:
        ready = http.get("/ready")
        agent = http.post("/v1/chat/completions", json=HELLO)
        responses = http.post("/v1/responses", json={"model": FAKE_MODEL, "input": "hi"})
        chat = http.post("/v1/chat/completions", json={**HELLO, "x_codex": {"mode": "chat"}})
    assert ready.status_code == 503
    assert "agent mode is refused" in ready.json()["reason"] and "No permissions to create" in ready.json()["reason"]
    for refused in (agent, responses):
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "sandbox_unavailable" and "CODEX_MODE=chat" in error["message"]
    assert len(provider.requests) == before + 1  # only the chat-mode turn reached the model
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == "pong"
    lines = [line for line in gateway.log().splitlines() if "sandbox does not work here" in line]
    assert len(lines) == 1 and " ERROR " in lines[0] and "Fix:" in lines[0]


def test_a_chat_mode_server_is_ready_without_a_sandbox(start_gateway: StartGateway, tmp_path: Path) -> None:
    gateway = start_gateway(CODEX_PATH=str(codex_without_sandbox(tmp_path)), CODEX_MODE="chat")
    with gateway.http() as http:
        ready = http.get("/ready")
        agent = http.post("/v1/chat/completions", json={**HELLO, "x_codex": {"mode": "agent"}})
    assert ready.status_code == 200 and ready.json()["sandbox"].startswith("not working: ")
    assert agent.status_code == 503 and agent.json()["error"]["code"] == "sandbox_unavailable"


def test_doctor_names_a_missing_sandbox(provider: FakeProvider, tmp_path: Path) -> None:
    home = write_codex_home(tmp_path / "home", provider.base_url)
    env = clean_environment(
        CODEX_CONFIG_DIR=str(home),
        CODEX_WORKDIR=str(tmp_path / "work"),
        CODEX_DATA_DIR=str(tmp_path / "data"),
        CODEX_PATH=str(codex_without_sandbox(tmp_path)),
        PORT="1",
    )
    done = subprocess.run(
        [sys.executable, "-m", "app", "doctor"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    [line] = [line for line in done.stdout.splitlines() if " sandbox: " in line]
    assert done.returncode == 1 and line.startswith("FAIL") and "No permissions to create" in line and "Fix:" in line


def test_an_unwritable_codex_home_is_one_line_with_the_fix() -> None:
    """As Docker leaves it when the mount source was missing: a root-owned home, the server running as a user."""
    # outside pytest's root-only tmp tree, and outside /tmp (a CODEX_HOME there stops startup for another reason)
    base = Path(tempfile.mkdtemp(prefix="codex-wrapper-home-test-", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        home, work, data = base / "codex-home", base / "work", base / "data"
        for path in (home, work, data):
            path.mkdir()
        run_as: list[str] = []
        if os.getuid() == 0:  # root can write anywhere: run the server as nobody against a home root owns
            run_as = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            for path in (work, data):
                shutil.chown(path, 65534, 65534)
        else:
            home.chmod(0o555)
        env = clean_environment(
            CODEX_HOME=str(home),
            CODEX_WORKDIR=str(work),
            CODEX_DATA_DIR=str(data),
            CODEX_WRAPPER_PROFILE_DIR=str(base / "no-profile"),
            HOME=str(work),
        )
        done = subprocess.run(
            [*run_as, sys.executable, "-m", "app", "serve"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    [line] = done.stderr.strip().splitlines()
    assert done.returncode == 2
    assert f"CODEX_HOME {home} is not writable by uid" in line and "Fix: `sudo chown -R" in line


def test_the_image_healthcheck_follows_port_and_readiness(start_gateway: StartGateway, tmp_path: Path) -> None:
    ready = start_gateway()
    not_ready = start_gateway(CODEX_PATH=str(codex_without_sandbox(tmp_path)))
    outcomes = {}
    for name, gateway in (("ready", ready), ("not ready", not_ready)):
        env = {"PATH": os.environ["PATH"], "HOST": "0.0.0.0", "PORT": gateway.base_url.rsplit(":", 1)[1]}
        done = subprocess.run(
            [sys.executable, "-m", "app.healthcheck"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30
        )
        outcomes[name] = (done.returncode, done.stdout)
    assert outcomes["ready"][0] == 0 and '"status":"ready"' in outcomes["ready"][1]
    assert outcomes["not ready"][0] == 1 and "agent mode is refused" in outcomes["not ready"][1]
