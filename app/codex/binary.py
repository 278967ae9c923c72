"""Finding the Codex binary and its version (the environment its processes get: app/codex/env.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app.config import REPO_ROOT, Settings

_TRIPLES = {
    ("Linux", "x86_64"): ("linux-x64", "x86_64-unknown-linux-musl"),
    ("Linux", "aarch64"): ("linux-arm64", "aarch64-unknown-linux-musl"),
    ("Darwin", "x86_64"): ("darwin-x64", "x86_64-apple-darwin"),
    ("Darwin", "arm64"): ("darwin-arm64", "aarch64-apple-darwin"),
}


_GROUP_EXIT_WAIT = 3.0  # seconds a SIGKILLed group may take to be gone (a ~300 MB binary unmapping)
PINNED_CODEX = REPO_ROOT / "node_modules" / ".bin" / "codex"  # what `make install` (npm ci) installs


class CodexMissing(Exception):
    """The Codex binary cannot be found or run."""


@dataclass(frozen=True)
class CodexBinary:
    """How to start Codex: the executable and the extra environment it expects."""

    path: Path
    extra_env: dict[str, str]
    version: str = ""
    source: str = "pinned"  # "pinned" (node_modules), "CODEX_PATH", or "PATH" (a fallback: no pinned install)

    @property
    def origin(self) -> str:
        """Where it came from, for startup's and doctor's line: "pinned" or "from CODEX_PATH"/"from PATH"."""
        return "pinned" if self.source == "pinned" else f"from {self.source}"


def pinned_version() -> str:
    """The Codex version package.json pins: the one the gateway is tested with."""
    try:
        pins = json.loads((REPO_ROOT / "package.json").read_text())["dependencies"]
        return str(pins["@openai/codex"]).lstrip("=^~ ")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _configured_path(settings: Settings, pinned: Path = PINNED_CODEX) -> tuple[Path, str]:
    """CODEX_PATH if set, else the pinned install, else (untested) `codex` on PATH; and which one it is."""
    if settings.codex_path:
        found = shutil.which(settings.codex_path)
        if not found:
            raise CodexMissing(f"CODEX_PATH={settings.codex_path!r} is not an executable file")
        return Path(found), "CODEX_PATH"
    if pinned.exists():
        return pinned, "pinned"
    on_path = shutil.which("codex")
    if on_path:
        return Path(on_path), "PATH"
    raise CodexMissing(f"no Codex binary: {pinned} is missing (run `make install`) and CODEX_PATH is unset")


def _native_behind_npm_launcher(launcher: Path) -> CodexBinary | None:
    """The npm package's `bin/codex.js` only spawns a native binary; run that directly (~90 ms faster)."""
    real = launcher.resolve()
    if real.name != "codex.js" or real.parent.name != "bin":
        return None
    package_root = real.parent.parent
    names = _TRIPLES.get((platform.system(), platform.machine()))
    if names is None:
        return None
    suffix, triple = names
    for vendor in (package_root.parent / f"codex-{suffix}" / "vendor", package_root / "vendor"):
        native = vendor / triple / "bin" / "codex"
        if native.is_file() and os.access(native, os.X_OK):
            # Without the launcher's CODEX_MANAGED_* variables: they would tell every command where the gateway is.
            return CodexBinary(native, {})
    return None


def locate_codex(settings: Settings, pinned: Path = PINNED_CODEX) -> CodexBinary:
    """CODEX_PATH if set, else the repo's node_modules/.bin/codex (pinned), else `codex` on PATH."""
    path, source = _configured_path(settings, pinned)
    found = _native_behind_npm_launcher(path) or CodexBinary(path, {})
    return CodexBinary(found.path, found.extra_env, source=source)


def is_tested(binary: CodexBinary) -> bool:
    """Whether the Codex that runs has the version package.json pins (the one the gateway is tested with); without
    a package.json to compare with, there is nothing to say."""
    pinned = pinned_version()
    return not pinned or binary.version == pinned


def codex_note(binary: CodexBinary) -> str:
    """What startup and doctor say about a Codex other than the pinned install (empty for the pinned one)."""
    pinned = pinned_version()
    if binary.source == "PATH":
        where, fix = f"from PATH ({PINNED_CODEX} is missing)", "run `make install` (npm ci)"
    elif binary.source == "CODEX_PATH":
        where, fix = "from CODEX_PATH", f"unset CODEX_PATH to run the pinned one, or point it at a Codex {pinned}"
    else:
        where, fix = "from node_modules", "run `make install` (npm ci)"
    if not is_tested(binary):
        running = f"Codex {binary.version} at {binary.path} runs {where}"
        return f"{running}: not the tested Codex {pinned} (package.json). Fix: {fix}"
    if binary.source == "PATH":
        tested = ", the tested version" if pinned else ""
        return f"Codex {binary.version} at {binary.path} runs {where}{tested}. Fix: {fix}"
    return ""


def probe_version(binary: CodexBinary, env: dict[str, str]) -> CodexBinary:
    """Run `codex --version` (at startup); raise CodexMissing when it does not answer."""
    try:
        done = subprocess.run(
            [str(binary.path), "--version"], env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodexMissing(f"cannot run {binary.path}: {exc}") from None
    if done.returncode != 0:
        raise CodexMissing(f"{binary.path} --version failed: {done.stderr.decode(errors='replace').strip()[:200]}")
    version = done.stdout.decode(errors="replace").strip().removeprefix("codex-cli ").strip()
    return CodexBinary(binary.path, binary.extra_env, version, binary.source)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by `pid` (started with `start_new_session=True`).

    Safe after the leader was reaped: Linux reuses no PID while a group of that ID has members.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def group_running(pgid: int) -> bool:
    """Whether a member of process group `pgid` still runs (a zombie, waiting to be collected, does not)."""
    try:
        os.killpg(pgid, 0)  # no member at all: the common case, without a look through /proc
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                state, _ppid, group = stat.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if state != "Z" and int(group) == pgid:
            return True
    return False


async def end_group(pgid: int, timeout: float = _GROUP_EXIT_WAIT) -> None:
    """SIGKILL what is left of the group led by `pgid` and wait, bounded, until none of it runs: a gateway that
    returns from its shutdown has no Codex process still on its way out."""
    kill_group(pgid, signal.SIGKILL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not group_running(pgid):
            return
        await asyncio.sleep(0.01)
