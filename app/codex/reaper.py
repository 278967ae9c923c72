"""What a killed gateway left running is ended at the next start.

Codex runs each sandboxed command in a session of its own, out of reach of a signal to Codex's process group. The
gateway stops Codex in order (SIGTERM to its group, which ends the sandbox), but a gateway killed with SIGKILL, or by
the OOM killer, cannot: `codex exec` dies on its own SIGTERM, sometimes before its command, which init then adopts.
The next gateway on the same CODEX_HOME finds such commands by the environment Codex gives them, and ends them.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("codex_wrapper.reaper")


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, name) of every live process this one can see."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                head, tail = stat.read().rsplit(")", 1)
        except OSError:
            continue
        state, ppid = tail.split()[:2]
        if state != "Z":
            found.append((int(entry.name), int(ppid), head.split("(", 1)[1]))
    return found


def _environ(pid: int) -> bytes:
    try:
        return b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def leftovers(binary: Path, codex_home: Path) -> set[int]:
    """Commands of a Codex on `codex_home` whose parent is no longer Codex or one of its commands, with their
    descendants. Codex hands a command its CODEX_HOME and CODEX_TOOL_CALL_ID; its sandbox helpers keep only a PATH
    that names the home's arg0 folder."""
    home, call, arg0 = f"\0CODEX_HOME={codex_home}\0".encode(), b"\0CODEX_TOOL_CALL_ID=", f"{codex_home}/tmp/arg0"

    def of_codex(pid: int) -> bool:
        environ = _environ(pid)
        return (home in environ and call in environ) or arg0.encode() in environ

    processes = _processes()
    parent_of = {pid: ppid for pid, ppid, _ in processes}
    codex = {pid for pid, _, name in processes if name == binary.name[:15]}  # Codex itself: a live gateway's
    spared, pid = set(codex), os.getpid()
    while pid > 1:  # this gateway and what started it (a test run inside a Codex session, say)
        spared.add(pid)
        pid = parent_of.get(pid, 0)
    found = {
        pid
        for pid, ppid, _ in processes
        if pid not in spared and ppid not in codex and of_codex(pid) and not of_codex(ppid)
    }
    grew = True
    while grew:
        more = {pid for pid, ppid, _ in processes if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def end_leftovers(binary: Path, codex_home: Path, at_shutdown: bool = False) -> int:
    """SIGKILL every leftover and wait (bounded) until none runs; how many there were. At startup, before this
    gateway starts Codex; at shutdown, after its engine stopped, so that nothing of its Codex outlives it."""
    found = leftovers(binary, codex_home)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    deadline = time.monotonic() + 2
    while found and time.monotonic() < deadline and any(_running(pid) for pid in found):
        time.sleep(0.02)
    if found and at_shutdown:
        log.warning("ended %d process(es) of Codex still running after its engine stopped", len(found))
    elif found:
        log.warning("ended %d process(es) Codex left running when a gateway on this CODEX_HOME was killed", len(found))
    return len(found)
