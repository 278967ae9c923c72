"""Issue 20, finding 8: a key holder's fork bomb and memory hog, through the real Codex sandbox on both engines,
are bounded by the command limits (app/codex/command_limits.py: a cgroup per Codex process), and another key holder's
turn still completes. Each attack is bounded by construction too (a fixed number of forks, `ulimit -v`), so that
it cannot take this shared machine down even where the limit failed."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest

from app.codex.command_limits import Cgroups, Limits
from tests.fakes.provider import FakeProvider
from tests.harness import wait_for
from tests.integration.test_policy_live import run_command
from tests.integration.test_security_sandbox import StartGateway

if Cgroups.open(Limits(64, 0, 0))[0] is None:
    pytest.skip("this machine lets no process create cgroups (the limits are off here)", allow_module_level=True)

MAX_PROCESSES = 96  # per Codex process, its own threads included
FORKS = 300  # the bomb's own bound
MAX_MEMORY_MB = 600
KEYS = {"PROXY_API_KEY": "sk-alice,sk-bob"}


def fork_bomb(release: Path) -> str:
    """Try to leave the group first; then fork up to FORKS sleepers, report how many, hold them until `release`
    exists (at most 60 s)."""
    script = f"""import os, sys, time
n = 0
for _ in range({FORKS}):
    try:
        pid = os.fork()
    except OSError as exc:
        print("FORK FAILED after", n, exc, flush=True)
        break
    if pid == 0:
        os.closerange(0, 3)
        time.sleep(60)
        os._exit(0)
    n += 1
else:
    print("FORKED", n, flush=True)
deadline = time.monotonic() + 60
while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:
    time.sleep(0.05)
print("RELEASED", flush=True)
"""
    escape = "for f in /sys/fs/cgroup/pids/cgroup.procs /sys/fs/cgroup/cgroup.procs; do echo 0 > $f; done; "
    return f"{escape}ulimit -v 1000000; python3 - <<'EOF'\n{script}EOF"


MEMORY_HOG = (  # 16 MiB more every step, up to 1.5 GiB at most, and `ulimit -v` below 2.5 GiB as a safety net
    "ulimit -v 2500000; python3 - <<'EOF'\n"
    "held = []\n"
    "for step in range(96):\n"
    "    held.append(bytearray(16 << 20))\n"
    "    print('HELD', (step + 1) * 16, flush=True)\n"
    "print('ALL', 'HELD', flush=True)\n"
    "EOF\n"
    "echo exit=$?"
)


def gateway_groups(pid: int) -> list[Path]:
    return list(Path("/sys/fs/cgroup/pids").glob(f"codex-wrapper-{pid}-*"))


def test_a_fork_bomb_is_bounded_and_other_turns_complete(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, tmp_path: Path
) -> None:
    gateway = start_gateway(
        CODEX_ENGINE=engine,
        CODEX_APP_SERVER_WORKERS="2",
        CODEX_COMMAND_MAX_PROCESSES=str(MAX_PROCESSES),
        **KEYS,
    )
    release = tmp_path / "release"
    outputs: dict[str, str] = {}

    def alice() -> None:
        outputs["alice"] = run_command(gateway, provider, f"bomb-{engine}", fork_bomb(release), api_key="sk-alice")

    bomb = threading.Thread(target=alice)
    bomb.start()
    try:
        full = lambda: any(  # noqa: E731 - the bomb holds its group at the limit
            int((g / "pids.current").read_text()) >= MAX_PROCESSES - 2 for g in gateway_groups(gateway.process.pid)
        )
        assert wait_for(full, timeout=60), "the fork bomb never filled its group"
        output = run_command(gateway, provider, f"bob-{engine}", "echo bob-ok; ls / | wc -l", api_key="sk-bob")
        assert "bob-ok" in output  # another key holder's turn, while the bomb holds its processes
    finally:
        release.touch()
        bomb.join(90)
    forked = re.search(r"FORK FAILED after (\d+)", outputs.get("alice", ""))
    assert forked and int(forked.group(1)) < MAX_PROCESSES, outputs
    assert f"FORKED {FORKS}" not in outputs["alice"] and "RELEASED" in outputs["alice"]
    assert "cgroup.procs: Read-only file system" in outputs["alice"]  # no way out of its group


def test_a_memory_hog_is_bounded_and_other_turns_complete(
    start_gateway: StartGateway, engine: str, provider: FakeProvider
) -> None:
    gateway = start_gateway(
        CODEX_ENGINE=engine,
        CODEX_APP_SERVER_WORKERS="2",
        CODEX_COMMAND_MAX_MEMORY_MB=str(MAX_MEMORY_MB),
        **KEYS,
    )
    output = run_command(gateway, provider, f"hog-{engine}", MEMORY_HOG, api_key="sk-alice")
    held = [int(n) for n in re.findall(r"HELD (\d+)", output)]
    assert held and max(held) < MAX_MEMORY_MB and "ALL HELD" not in output, output
    assert "exit=137" in output  # killed by the kernel for its group's memory, not by its own ulimit
    for key in ("sk-bob", "sk-alice"):  # other turns, and the hog's owner's next one
        assert "still-ok" in run_command(gateway, provider, f"after-hog-{engine}-{key}", "echo still-ok", api_key=key)


def test_what_a_codex_process_leaves_in_its_group_is_ended() -> None:
    cgroups, _ = Cgroups.open(Limits(64, 0, 0))
    assert cgroups is not None
    group = cgroups.group("leftovers")
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], preexec_fn=group.preexec())
    group.started()
    try:
        assert wait_for(lambda: len(group.members()) == 3)  # the leader and two background commands
        assert (group.dirs[0] / "pids.max").read_text().strip() == "64"
        leader.kill()
        leader.wait()
        left = group.members()
        assert len(left) == 2
        group.remove()
        assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in left))
    finally:
        leader.kill()
        cgroups.close()
    assert not any(folder.exists() for folder in group.dirs)
