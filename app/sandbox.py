"""Whether Codex's own sandbox works here, found by running a sandboxed command (at startup and in `doctor`).

Agent turns under read-only or workspace-write rely on it: Codex runs their shell commands through bubblewrap.
Where bubblewrap cannot create its namespaces (Docker's default seccomp profile, a kernel or AppArmor policy that
forbids unprivileged user namespaces), those commands would fail or, worse, a misconfiguration could let them run
unconfined. The probe asks Codex to run a command in its read-only sandbox that prints a line and tries a write:
it works when the line comes out and the write is blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.codex_cli import CodexBinary, kill_group

_SCRIPT = 'echo sandbox-probe-ran; touch "$1" 2>/dev/null && echo sandbox-probe-wrote; exit 0'
FIX = (
    "Fix: let Codex's bubblewrap create user namespaces (in Docker: run with the compose file's "
    "security_opt, see docs/DOCKER.md), or set CODEX_MODE=chat (no shell, no sandbox needed)"
)


@dataclass(frozen=True)
class SandboxStatus:
    works: bool
    detail: str  # what the probe saw: the proof when it works, the reason when it does not

    def refuses(self, mode: str, sandbox: str) -> bool:
        """Whether a turn must be refused: an agent turn (it has a shell) in a sandbox that does not work."""
        return not self.works and mode == "agent" and sandbox != "danger-full-access"

    def reason(self) -> str:
        return f"Codex's sandbox does not work here ({self.detail}), so agent mode is refused. {FIX}"


NOT_PROBED = SandboxStatus(True, "not probed")


def probe_argv(binary: CodexBinary, target: Path) -> list[str]:
    return [
        str(binary.path), "sandbox", "-c", 'sandbox_mode="read-only"', "--",
        "/bin/sh", "-c", _SCRIPT, "sh", str(target),
    ]  # fmt: skip


def judge(returncode: int | None, stdout: str, stderr: str, wrote: bool) -> SandboxStatus:
    """The verdict on one probe run."""
    if "sandbox-probe-ran" not in stdout:
        lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
        why = next((line for line in lines if "bwrap" in line), lines[-1] if lines else f"exit status {returncode}")
        return SandboxStatus(False, f"a sandboxed command did not run: {why[:300]}")
    if wrote or "sandbox-probe-wrote" in stdout:
        return SandboxStatus(False, "a write that the read-only sandbox must block went through")
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
            return SandboxStatus(False, f"cannot run {binary.path}: {exc}")
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            return SandboxStatus(False, f"the sandboxed command did not finish within {timeout:.0f} s")
        finally:
            kill_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        return judge(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), target.exists())
