"""AGENTS.md of a turn's working directory, read by the gateway instead of Codex (app-server engine, agent mode).

Under the turn's permission profile Codex 0.169 checks and reads `AGENTS.override.md`/`AGENTS.md` through its
sandboxed filesystem helper, one launch (~35 ms CPU) per check; with `project_doc_max_bytes = 0` it does not look,
and the gateway reads the file itself and hands it to the model in the shape Codex uses. A file written by a
sandboxed command is hostile: what is actually opened (a symlink or a swap after a check is followed by the kernel,
then judged by /proc/self/fd) must be a regular file with one link, inside the working directory and outside every
denied path; anything else is skipped with a log line and never read.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from app.policy.paths import inside

log = logging.getLogger("codex_wrapper")

NAMES = ("AGENTS.override.md", "AGENTS.md")  # Codex's order: the first that is a file wins
MAX_BYTES = 32 * 1024  # Codex's default project_doc_max_bytes
# What turns Codex's own discovery off (its read and every check before it).
DISCOVERY_OFF: dict[str, int] = {"project_doc_max_bytes": 0}


def _open_checked(path: Path, cwd: Path, denied: tuple[Path, ...]) -> int | None:
    """An open descriptor of `path` if what it opens is a plain file the turn may see; None if absent or refused.
    Checked before the open too, so nothing outside is ever opened unless it was swapped in meanwhile."""
    if not _allowed(path, Path(os.path.realpath(path)), cwd, denied, path.is_file(), 1):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)  # a FIFO must not block
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("AGENTS.md skipped: %s cannot be opened (%s)", path, exc.strerror or exc)
        return None
    try:
        info = os.fstat(fd)
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))  # the file opened, whatever the name pointed at meanwhile
        if _allowed(path, real, cwd, denied, stat.S_ISREG(info.st_mode), info.st_nlink):
            return fd
    except OSError as exc:
        log.warning("AGENTS.md skipped: %s (%s)", path, exc.strerror or exc)
    os.close(fd)
    return None


def _allowed(path: Path, real: Path, cwd: Path, denied: tuple[Path, ...], regular: bool, links: int) -> bool:
    """Whether `path`, resolving to `real`, may be read; a refusal is logged (an absent file is not)."""
    reason = ""
    if not inside(real, cwd):
        reason = f"it resolves outside the working directory, to {real}"
    elif any(inside(real, d) for d in denied):
        reason = f"it resolves into a denied path, {real}"
    elif not regular:
        if not os.path.lexists(path):
            return False
        reason = "not a regular file"
    elif links > 1:
        reason = "it has other hard links"
    if reason:
        log.warning("AGENTS.md skipped, not read: %s (%s)", path, reason)
    return not reason


def read_project_doc(cwd: Path, denied: tuple[str, ...], max_bytes: int = MAX_BYTES) -> str | None:
    """The text of the working directory's AGENTS.override.md or AGENTS.md (first 32 KiB), or None. Blocking."""
    root = Path(os.path.realpath(cwd))
    denied_paths = tuple(Path(os.path.realpath(d)) for d in denied)
    for name in NAMES:
        fd = _open_checked(root / name, root, denied_paths)
        if fd is None:
            continue
        try:
            with os.fdopen(fd, "rb") as file:
                data = file.read(max_bytes)
        except OSError as exc:
            log.warning("AGENTS.md skipped: %s (%s)", root / name, exc.strerror or exc)
            continue
        text = data.decode("utf-8", errors="replace")
        if text.strip():
            return text
    return None


def instructions_message(cwd: Path, text: str) -> dict[str, object]:
    """A project doc as Codex 0.169 gives it to the model: a user message in its AGENTS.md wrapper."""
    wrapped = f"# AGENTS.md instructions for {cwd}\n\n<INSTRUCTIONS>\n{text}\n</INSTRUCTIONS>"
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": wrapped}]}
