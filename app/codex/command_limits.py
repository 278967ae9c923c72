"""Bounds on what a key holder's commands use: processes, memory and CPU, through a cgroup per Codex process.

Rlimits cannot do it: RLIMIT_NPROC counts every process of the real user (all of root's, and Codex's own threads)
and root is exempt from it; RLIMIT_AS breaks Codex; RLIMIT_CPU would end a long-lived app-server worker. So each
Codex process (an app-server worker, or the `codex exec` of one turn) starts in a cgroup of its own, beside the
gateway's, with `pids.max`, a memory limit and a CPU quota (CODEX_COMMAND_MAX_*). The commands Codex runs inherit
it and cannot leave it (the sandbox sees /sys read-only); what is left in a group when its Codex process has
exited is ended with it. A fork bomb or a memory hog thus exhausts its own group
only: the turns of other workers (other users) go on. Where the gateway cannot create cgroups (a container's
read-only /sys/fs/cgroup), startup says so once and the container's limits (compose's pids_limit, mem_limit) are
the bound. Command CPU time is further bounded by CODEX_TIMEOUT: a turn's commands end with it (app/codex/reaper.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from app.config import Settings

log = logging.getLogger("codex_wrapper")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "memory", "cpu")
PREFIX = "codex-wrapper-"
_PERIOD = 100_000  # µs, the kernel's default CFS period


@dataclass(frozen=True)
class Limits:
    processes: int  # 0: unbounded
    memory_bytes: int
    cpus: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.codex_command_max_processes,
            settings.codex_command_max_memory_mb * 1024 * 1024,
            settings.codex_command_max_cpus,
        )

    def files(self, controller: str, v2: bool) -> dict[str, str]:
        """The files of a group that set this limit, and their values; empty when the limit is off."""
        if controller == "pids" and self.processes:
            return {"pids.max": str(self.processes)}
        if controller == "memory" and self.memory_bytes:
            return {"memory.max" if v2 else "memory.limit_in_bytes": str(self.memory_bytes)}
        if controller == "cpu" and self.cpus:
            quota = max(1000, int(self.cpus * _PERIOD))
            if v2:
                return {"cpu.max": f"{quota} {_PERIOD}"}
            return {"cpu.cfs_period_us": str(_PERIOD), "cpu.cfs_quota_us": str(quota)}
        return {}


def own_cgroups(text: str) -> dict[str, str]:
    """controller → this process's cgroup path, from /proc/self/cgroup ("" for the unified v2 hierarchy)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            found[name] = path
    return found


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


@dataclass
class Group:
    """One Codex process's cgroup (a folder per hierarchy)."""

    dirs: list[Path]
    pending: list[Group] = field(default_factory=list)  # the groups still to remove, shared by all
    _fds: list[int] = field(default_factory=list)

    def preexec(self) -> Callable[[], None]:
        """For subprocess' preexec_fn: the child joins the group before it runs Codex (its descriptors are opened
        here, in the parent; the child only writes)."""
        self._fds = [os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) for d in self.dirs]
        fds = list(self._fds)

        def enter() -> None:
            for fd in fds:
                os.write(fd, b"0")

        return enter

    def started(self) -> None:
        """Once the child runs: the parent's descriptors are no longer needed."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def members(self) -> set[int]:
        found: set[int] = set()
        for folder in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                found |= {int(pid) for pid in (folder / "cgroup.procs").read_text().split()}
        return found

    def remove(self) -> bool:
        """Once its Codex process has exited: end what it left behind (sandbox helpers, background commands) and
        remove the group; a group whose processes are still exiting is removed later (`pending`)."""
        self.started()
        for pid in self.members():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for folder in self.dirs:
            with contextlib.suppress(OSError):
                folder.rmdir()
        left = any(folder.exists() for folder in self.dirs)
        if left and self not in self.pending:
            self.pending.append(self)
        return not left


class Cgroups:
    """Where this gateway's groups are made: per controller, the folder of the gateway's own cgroup."""

    def __init__(self, parents: dict[str, tuple[Path, bool]], limits: Limits) -> None:
        self.parents = parents  # controller → (parent folder, v2)
        self.limits = limits
        self._serial = count(1)
        self._pending: list[Group] = []

    @classmethod
    def open(cls, limits: Limits, root: Path = CGROUP_ROOT) -> tuple[Cgroups | None, str]:
        """The cgroups this process may create, or None and why not."""
        wanted = [c for c in CONTROLLERS if limits.files(c, v2=False)]
        if not wanted:
            return None, "all CODEX_COMMAND_MAX_* limits are off"
        try:
            own = own_cgroups(Path("/proc/self/cgroup").read_text())
        except OSError as exc:
            return None, f"cannot read /proc/self/cgroup ({exc.strerror})"
        unified = root if (root / "cgroup.controllers").exists() else root / "unified"
        parents: dict[str, tuple[Path, bool]] = {}
        for controller in wanted:
            v1 = root / controller
            if controller in own and (v1 / "cgroup.procs").exists():
                parents[controller] = (v1 / own[controller].lstrip("/"), False)
            elif "" in own and (unified / "cgroup.controllers").exists():
                parent = unified / own[""].lstrip("/")
                enabled = (parent / "cgroup.subtree_control").read_text().split() if parent.exists() else []
                if controller in enabled or _write(parent / "cgroup.subtree_control", f"+{controller}"):
                    parents[controller] = (parent, True)
        probe = cls(parents, limits)
        try:
            probe.group("probe").remove()
        except OSError as exc:
            return None, f"cannot create a cgroup ({exc.strerror or exc})"
        missing = [c for c in wanted if c not in parents]
        if missing == wanted:
            return None, "no cgroup hierarchy with the pids, memory or cpu controller is writable"
        sweep(parents.values())
        return probe, ("not enforced for " + ", ".join(missing)) if missing else ""

    def group(self, name: str) -> Group:
        """A new group with the limits set; OSError when it cannot be made."""
        self._pending[:] = [g for g in self._pending if not g.remove()]
        tag = f"{PREFIX}{os.getpid()}-{name}-{next(self._serial)}"
        dirs: dict[Path, None] = {}
        for controller, (parent, v2) in self.parents.items():
            folder = parent / tag
            folder.mkdir(exist_ok=True)
            for filename, value in self.limits.files(controller, v2).items():
                (folder / filename).write_text(value)
            dirs[folder] = None
        return Group(list(dirs), self._pending)

    def close(self, wait: float = 2.0) -> None:
        """At shutdown: end what is left in this gateway's groups and remove them."""
        deadline = time.monotonic() + wait
        while self._pending and time.monotonic() < deadline:
            self._pending[:] = [g for g in self._pending if not g.remove()]
            time.sleep(0.05)
        sweep(self.parents.values(), mine=True)


def sweep(parents: Iterable[tuple[Path, bool]], mine: bool = False) -> None:
    """Remove empty groups of gateways that are gone (or, with `mine`, this one's)."""
    for parent, _ in parents:
        for folder in parent.glob(f"{PREFIX}*"):
            pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
            gone = pid.isdigit() and not Path(f"/proc/{pid}").exists()
            if gone or (mine and pid == str(os.getpid())):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def open_cgroups(settings: Settings) -> Cgroups | None:
    """The command limits at startup, logged once either way."""
    limits = Limits.of(settings)
    cgroups, problem = Cgroups.open(limits)
    if cgroups is None:
        log.warning(
            "command limits: %s, so a key holder's commands are bounded only by the container or machine "
            "(docker-compose.yml sets pids_limit and mem_limit; see docs/SECURITY.md)",
            problem,
        )
        return None
    log.info(
        "command limits per Codex process (its commands included): %s processes, %s MiB, %s CPUs%s",
        limits.processes or "unbounded",
        settings.codex_command_max_memory_mb or "unbounded",
        limits.cpus or "unbounded",
        f" ({problem})" if problem else "",
    )
    return cgroups
