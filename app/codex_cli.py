"""Finding the Codex binary and its version (the environment its processes get: app/codex_env.py)."""

from __future__ import annotations

import contextlib
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


class CodexMissing(Exception):
    """The Codex binary cannot be found or run."""


@dataclass(frozen=True)
class CodexBinary:
    """How to start Codex: the executable and the extra environment it expects."""

    path: Path
    extra_env: dict[str, str]
    version: str = ""


def _configured_path(settings: Settings) -> Path:
    if settings.codex_path:
        found = shutil.which(settings.codex_path)
        if not found:
            raise CodexMissing(f"CODEX_PATH={settings.codex_path!r} is not an executable file")
        return Path(found)
    on_path = shutil.which("codex")
    if on_path:
        return Path(on_path)
    local = REPO_ROOT / "node_modules" / ".bin" / "codex"
    if local.exists():
        return local
    raise CodexMissing("no Codex binary: set CODEX_PATH, put `codex` on PATH, or run `npm ci` in the repo")


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


def locate_codex(settings: Settings) -> CodexBinary:
    """CODEX_PATH if set, else `codex` on PATH, else the repo's node_modules/.bin/codex."""
    path = _configured_path(settings)
    return _native_behind_npm_launcher(path) or CodexBinary(path, {})


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
    return CodexBinary(binary.path, binary.extra_env, version)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by `pid` (started with `start_new_session=True`).

    Safe after the leader was reaped: Linux reuses no PID while a group of that ID has members.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
