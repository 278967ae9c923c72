"""Whether Codex's own sandbox works here, found by running a sandboxed command (at startup and in `doctor`).

Agent turns under read-only or workspace-write rely on it: Codex runs their shell commands through bubblewrap.
Where bubblewrap cannot create its namespaces (Docker's default seccomp profile, a kernel or AppArmor policy that
forbids unprivileged user namespaces), those commands would fail or, worse, a misconfiguration could let them run
unconfined. The probe asks Codex to run a command in its read-only sandbox that prints a line and tries a write:
it works when the line comes out and the write is blocked.

When the command does not run, the fix named is the one for the cause Codex reported: bubblewrap's namespaces, a
missing CODEX_HOME (Codex refuses to start without it; the gateway creates it, `doctor` probes as if it had), or,
for anything else, that the cause is not known, with Codex's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.codex.binary import CodexBinary, kill_group

_SCRIPT = 'echo sandbox-probe-ran; touch "$1" 2>/dev/null && echo sandbox-probe-wrote; exit 0'
NAMESPACES_FIX = (
    "Fix: let Codex's bubblewrap create user namespaces (in Docker: run with the compose file's "
    "security_opt, see docs/DOCKER.md), or set CODEX_MODE=chat (no shell, no sandbox needed)"
)
HOME_FIX = "Fix: create that CODEX_HOME (the gateway creates it at startup)"
UNKNOWN_FIX = (
    "The cause is not known: run `codex sandbox -- true` with the same CODEX_HOME to see Codex's whole message, "
    "or set CODEX_MODE=chat (no shell, no sandbox needed)"
)
LEAK_FIX = "Fix: set CODEX_MODE=chat until Codex's read-only sandbox blocks writes here (run `codex sandbox` by hand)"
# What bubblewrap and Codex's Linux sandbox say when namespaces, seccomp or Landlock are not allowed
_NAMESPACE_SIGNS = ("bwrap", "namespace", "uid map", "landlock", "seccomp")
_BACKTRACE_LINE = re.compile(r"^(\d+: |at |Stack backtrace:|WARNING)")


@dataclass(frozen=True)
class SandboxStatus:
    works: bool
    detail: str  # what the probe saw: the proof when it works, the reason when it does not
    fix: str = NAMESPACES_FIX  # what to do about it, for the cause the probe found (UNKNOWN_FIX when none)

    def refuses(self, mode: str, sandbox: str) -> bool:
        """Whether a turn must be refused: an agent turn (it has a shell) in a sandbox that does not work."""
        return not self.works and mode == "agent" and sandbox != "danger-full-access"

    def reason(self) -> str:
        return f"Codex's sandbox does not work here ({self.detail}), so agent mode is refused. {self.fix}"


NOT_PROBED = SandboxStatus(True, "not probed")


def probe_argv(binary: CodexBinary, target: Path) -> list[str]:
    return [
        str(binary.path), "sandbox", "-c", 'sandbox_mode="read-only"', "--",
        "/bin/sh", "-c", _SCRIPT, "sh", str(target),
    ]  # fmt: skip


def failure_cause(returncode: int | None, stderr: str) -> tuple[str, str]:
    """Codex's own reason for a probe that did not run (its error line, not a RUST_BACKTRACE frame), and the fix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not _BACKTRACE_LINE.match(line)]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
    signs = [line for line in lines if any(sign in line.lower() for sign in _NAMESPACE_SIGNS)]
    why = (signs or errors or lines[-1:] or [f"exit status {returncode}, no message"])[0]
    if signs:
        return why, NAMESPACES_FIX
    if "CODEX_HOME" in why and "does not exist" in why:
        return why, HOME_FIX
    return why, UNKNOWN_FIX


def judge(returncode: int | None, stdout: str, stderr: str, wrote: bool) -> SandboxStatus:
    """The verdict on one probe run."""
    if "sandbox-probe-ran" not in stdout:
        why, fix = failure_cause(returncode, stderr)
        return SandboxStatus(False, f"a sandboxed command did not run: {why[:300]}", fix)
    if wrote or "sandbox-probe-wrote" in stdout:
        return SandboxStatus(False, "a write that the read-only sandbox must block went through", LEAK_FIX)
    return SandboxStatus(True, "a sandboxed command ran and its write was blocked (read-only)")


async def probe_sandbox(binary: CodexBinary, env: dict[str, str], timeout: float = 30.0) -> SandboxStatus:
    with tempfile.TemporaryDirectory(prefix="codex-wrapper-sandbox-probe-") as scratch:
        target = Path(scratch) / "written-from-the-sandbox"
        try:
            proc = await asyncio.create_subprocess_exec(
                *probe_argv(binary, target),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=scratch,
                start_new_session=True,
            )
        except OSError as exc:
            return SandboxStatus(False, f"cannot run {binary.path}: {exc}", UNKNOWN_FIX)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            return SandboxStatus(False, f"the sandboxed command did not finish within {timeout:.0f} s", UNKNOWN_FIX)
        finally:
            kill_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        return judge(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), target.exists())
