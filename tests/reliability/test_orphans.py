"""Codex runs sandboxed commands in sessions of their own; none may outlive a Codex or a gateway that died abruptly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, RunningGateway, codex_processes, run_gateway, wait_for

StartGateway = Callable[..., RunningGateway]
WRITES = {"CODEX_CLIENT_SANDBOX_MODES": "read-only,workspace-write", "CODEX_TIMEOUT": "60"}


def command_pids(argv: list[str]) -> list[int]:
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == wanted:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """Running: neither gone nor a zombie waiting for its parent to collect it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def app_server_above(pid: int) -> int:
    """The `codex app-server` worker whose turn started this process."""
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [b"app-server"]:
            return pid
    raise AssertionError("no app-server above the command")


@contextmanager
def command_running(gateway: RunningGateway, provider: FakeProvider, seconds: str) -> Iterator[int]:
    """A turn whose model runs `sleep <seconds>` in a workspace-write sandbox; yields the sleep's pid."""
    call = {"name": "exec_command", "arguments": json.dumps({"cmd": f"sleep {seconds}"})}
    marker = provider.script(f"sleep-{seconds}", Script(tool_call=call, deltas=["slept"]))
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]}
    body["x_codex"] = {"sandbox": "workspace-write"}

    def ask() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the gateway may be killed under it
            httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=70)

    client = threading.Thread(target=ask, daemon=True)
    client.start()
    assert wait_for(lambda: bool(command_pids(["sleep", seconds])), 30), "the command never started"
    [pid] = command_pids(["sleep", seconds])
    try:
        yield pid
    finally:
        for left in command_pids(["sleep", seconds]):  # never leave one behind, even when the test fails
            os.kill(left, signal.SIGKILL)


def test_a_gateway_killed_with_sigkill_leaves_no_command_on_the_app_server_engine(
    start_gateway: StartGateway, provider: FakeProvider
) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server", **WRITES)
    with command_running(gateway, provider, "61.01") as sleep:
        gateway.process.kill()
        gateway.process.wait(10)
        # Codex gets SIGTERM as the gateway dies, and ends its command
        assert wait_for(lambda: not alive(sleep), 10)
        assert wait_for(lambda: codex_processes(gateway.codex_home, pool=True) == [], 10)


def test_what_a_killed_gateway_left_is_ended_by_the_next_start(
    start_gateway: StartGateway, provider: FakeProvider, workdir: Path, tmp_path: Path
) -> None:
    gateway = start_gateway(CODEX_ENGINE="exec", **WRITES)
    with command_running(gateway, provider, "61.02") as sleep:
        environ = Path(f"/proc/{sleep}/environ").read_bytes().split(b"\0")
        assert f"CODEX_HOME={gateway.codex_home}".encode() in environ  # what marks a command as this Codex's
        assert any(variable.startswith(b"CODEX_TOOL_CALL_ID=") for variable in environ)
    gateway.process.kill()
    gateway.process.wait(10)
    # What a gateway killed at the wrong moment can leave (`codex exec` dies on SIGTERM, sometimes before its
    # command): a command of this Codex that init adopted.
    left = subprocess.Popen(
        ["setsid", "sh", "-c", "sleep 61.05 >/dev/null 2>&1 & echo $!"],
        env={"PATH": "/usr/bin:/bin", "CODEX_HOME": str(gateway.codex_home), "CODEX_TOOL_CALL_ID": "call_old"},
        stdout=subprocess.PIPE,
        text=True,
    )
    orphan = int(left.communicate()[0])
    other = subprocess.Popen(  # the operator's own shell on this CODEX_HOME, say: kept
        ["sleep", "61.06"], env={"CODEX_HOME": str(gateway.codex_home)}, start_new_session=True
    )
    try:
        with run_gateway(gateway.codex_home, workdir, tmp_path / "again.log", CODEX_ENGINE="exec") as again:
            assert wait_for(lambda: not alive(orphan), 10)
            assert wait_for(lambda: "Codex left running when a gateway on this CODEX_HOME was killed" in again.log())
            assert other.poll() is None
    finally:
        other.kill()
        other.wait(10)  # gone, not only signalled, before the count below
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)
    assert wait_for(lambda: codex_processes(gateway.codex_home, pool=True) == [], 5)


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGSEGV"])
def test_a_worker_that_dies_abruptly_leaves_no_command(
    start_gateway: StartGateway, provider: FakeProvider, signal_name: str
) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server", **WRITES)
    seconds = {"SIGKILL": "61.03", "SIGSEGV": "61.04"}[signal_name]
    with command_running(gateway, provider, seconds) as sleep:
        worker = app_server_above(sleep)
        os.kill(worker, getattr(signal, signal_name))
        assert wait_for(lambda: not alive(sleep), 15)
        assert wait_for(lambda: codex_processes(gateway.codex_home) == [], 10)
    assert gateway.process.poll() is None
    with gateway.http() as http:  # the restarted worker serves the next turn
        body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
        reply = http.post("/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 200


@pytest.mark.parametrize("engine", ["exec", "app-server"])
def test_a_turn_that_times_out_mid_command_leaves_no_command(
    start_gateway: StartGateway, provider: FakeProvider, engine: str
) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine, **{**WRITES, "CODEX_TIMEOUT": "4"})
    seconds = {"exec": "61.07", "app-server": "61.08"}[engine]
    with command_running(gateway, provider, seconds) as sleep:
        assert wait_for(lambda: not alive(sleep), 20)
        assert wait_for(lambda: codex_processes(gateway.codex_home) == [], 10)


@pytest.mark.parametrize("engine", ["exec", "app-server"])
def test_a_command_that_slips_into_the_background_is_ended(
    start_gateway: StartGateway, provider: FakeProvider, engine: str
) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine, **WRITES)
    seconds = {"exec": "61.09", "app-server": "61.10"}[engine]
    command = f"setsid sleep {seconds} >/dev/null 2>&1 < /dev/null & echo started"
    call = {"name": "exec_command", "arguments": json.dumps({"cmd": command})}
    marker = provider.script(f"background-{engine}", Script(tool_call=call, deltas=["left it running"]))
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]}
    try:
        with gateway.http() as http:
            reply = http.post("/v1/chat/completions", json={**body, "x_codex": {"sandbox": "workspace-write"}})
        assert reply.status_code == 200
        outputs = [out for sent in provider.requests if marker in json.dumps(sent) for out in tool_outputs(sent)]
        assert any("started" in out for out in outputs), outputs  # the model's command ran
        # Its own session, its shell gone: the sandbox's PID namespace ends it with the command
        assert wait_for(lambda: not any(alive(pid) for pid in command_pids(["sleep", seconds])), 10)
    finally:
        for left in command_pids(["sleep", seconds]):
            os.kill(left, signal.SIGKILL)
