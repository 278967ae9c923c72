"""What Codex's sandboxed commands may read and write: a Codex permission profile per turn.

Codex 0.169's permission profiles (`[permissions.<id>]`, filesystem entries `read`/`write`/`deny`) are enforced
by its Linux sandbox (bubblewrap) for shell commands, `apply_patch` and `view_image`, on both engines. The gateway
defines one profile per turn: the whole disk readable except the paths below, the workspace writable only with
`workspace-write`, /tmp and $TMPDIR never writable. `danger-full-access` runs without a profile (operator's choice).

Denied to every turn: the CODEX_HOME Codex runs with (auth.json, config.toml), every Codex home of the operator
(CODEX_CONFIG_DIR, the OS environment's CODEX_HOME, ~/.codex), CODEX_DATA_DIR
(stored responses, the gateway's temp files), the env file, the profile folder, CODEX_DENY_READ, and the gateway's
own directory (but its node_modules, which holds the Codex binary the sandbox starts, and any workspace inside it);
with several API keys also every other entry of CODEX_WORKDIR than the caller's own folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import REPO_ROOT, Settings
from app.policy.paths import inside
from app.turn import RunPolicy

PROFILE_ID = "codex-wrapper"
# Kept read-only inside a writable workspace, as Codex's own `:workspace` profile does.
PROTECTED_IN_WORKSPACE = (".git", ".codex", ".agents")


def env_file_path() -> Path:
    """The env file the settings were read from (CODEX_ENV_FILE, default .env in the server's directory)."""
    return Path(os.environ.get("CODEX_ENV_FILE", ".env")).expanduser().resolve()


def deny_except(root: Path, keep: list[Path]) -> list[Path]:
    """`root`, or when some `keep` path lies inside it, each entry of `root` that holds no kept path (recursively).

    Codex's sandbox re-exposes only writable children of a denied folder, so a readable child is kept by denying
    its siblings instead. The walk compares paths as written (the sandbox mounts them by name); a link on the way is
    resolved on its own (`inside`).
    """
    inner = [k for k in keep if k.is_relative_to(root)]
    if not inner:
        return [root]
    if root in inner:
        return []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    denied: list[Path] = []
    for entry in entries:
        if any(k.is_relative_to(entry) for k in inner):
            denied += deny_except(entry, inner)
        elif entry.is_symlink():  # the sandbox cannot mount over a link: deny what it points to, unless that is kept
            target = Path(os.path.realpath(entry))
            if target.exists() and not any(inside(k, target) for k in inner):
                denied.append(target)
        else:
            denied.append(entry)
    return denied


@dataclass(frozen=True)
class SandboxLayout:
    """The server's paths that no sandboxed command may read, fixed at startup."""

    protected: tuple[Path, ...]  # denied outright
    gateway_dir: Path  # denied but for `visible`
    visible: tuple[Path, ...]  # inside gateway_dir and still readable: node_modules, workspaces
    workdir: Path

    @classmethod
    def of(cls, settings: Settings, codex_home: Path, codex_binary: Path | None = None) -> SandboxLayout:
        protected = [
            codex_home,
            *settings.operator_codex_homes,
            settings.codex_data_dir,
            env_file_path(),
            settings.codex_wrapper_profile_dir,
            *settings.codex_deny_read,
        ]
        visible = [REPO_ROOT / "node_modules", settings.codex_workdir, *settings.codex_allowed_roots]
        if codex_binary is not None:
            visible.append(codex_binary.resolve().parent)
        unique = tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in protected))
        return cls(unique, REPO_ROOT, tuple(visible), settings.codex_workdir)

    def denied(self, user_root: Path | None = None) -> tuple[str, ...]:
        """Absolute paths a turn's commands may not read; `user_root`: the caller's own folder of CODEX_WORKDIR."""
        paths = [*self.protected, *deny_except(self.gateway_dir, list(self.visible))]
        if user_root is not None and user_root != self.workdir:
            paths += deny_except(self.workdir, [user_root])
        return tuple(str(p) for p in outermost(paths))


def outermost(paths: list[Path]) -> list[Path]:
    """`paths` without duplicates and without those inside another one (the sandbox cannot mount inside a denied
    folder)."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: (len(p.parts), str(p))):
        if not any(path.is_relative_to(outer) for outer in kept):  # by name, as the sandbox mounts them
            kept.append(path)
    return kept


def turn_profile(policy: RunPolicy) -> dict[str, Any] | None:
    """The profile of an agent turn; None in chat mode, whose Codex has no tool that touches the host (and so runs
    the plain sandbox, skipping the profile's per-thread cost: Codex then reads AGENTS.md through a sandboxed
    helper, ~0.1 s a file)."""
    if policy.mode == "chat":
        return None
    return permission_profile(policy.sandbox, policy.denied, bool(policy.network_access))


def permission_profile(sandbox: str, denied: tuple[str, ...], network: bool) -> dict[str, Any] | None:
    """The `[permissions.codex-wrapper]` table for a turn; None for danger-full-access (no sandbox)."""
    if sandbox == "danger-full-access":
        return None
    filesystem: dict[str, Any] = {":root": "read", **dict.fromkeys(denied, "deny")}
    if sandbox == "workspace-write":
        filesystem[":workspace_roots"] = {".": "write", **dict.fromkeys(PROTECTED_IN_WORKSPACE, "read")}
    profile: dict[str, Any] = {"filesystem": filesystem}
    if sandbox == "workspace-write" and network:
        profile["network"] = {"enabled": True}
    return profile
