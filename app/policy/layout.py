"""Startup checks on where things live: nothing that configures Codex may lie where Codex's sandbox can write.

Codex's sandbox can write the workspace (CODEX_WORKDIR, CODEX_ALLOWED_ROOTS), /tmp, $TMPDIR and the
`sandbox_workspace_write.writable_roots` of config.toml. A profile folder, CODEX_HOME, CODEX_DATA_DIR, env file or
gateway directory inside one of them would let one request configure the next Codex (an MCP server command runs
unsandboxed), so startup stops instead. Also here: the one-time move of the old default profile folder out of the
workspace, and the gateway's private temp folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.codex.home import OVERRIDES, codex_home_path
from app.config import REPO_ROOT, ConfigError, Settings
from app.policy.paths import inside
from app.policy.permissions import env_file_path

log = logging.getLogger("codex_wrapper")
OLD_PROFILE_DIR = REPO_ROOT / "workspace" / "codex_profile"  # the default before the profile left the workspace


def writable_roots(settings: Settings, config: dict[str, Any]) -> list[tuple[str, Path]]:
    """(name, path) of every root a sandboxed command can be let to write."""
    roots = [("the workspace CODEX_WORKDIR", settings.codex_workdir)]
    roots += [("CODEX_ALLOWED_ROOTS", root) for root in settings.codex_allowed_roots]
    roots += [("/tmp", Path("/tmp"))]
    if os.environ.get("TMPDIR"):
        roots.append(("$TMPDIR", Path(os.environ["TMPDIR"])))
    table = config.get("sandbox_workspace_write")
    extra = table.get("writable_roots") if isinstance(table, dict) else None
    if isinstance(extra, list):
        roots += [("sandbox_workspace_write.writable_roots", Path(str(p)).expanduser()) for p in extra]
    return roots


def protected_paths(settings: Settings, codex_home: Path) -> list[tuple[str, Path]]:
    """(name, path) of everything that configures Codex or holds the gateway's secrets."""
    return [
        ("the profile folder CODEX_WRAPPER_PROFILE_DIR", settings.codex_wrapper_profile_dir),
        ("CODEX_HOME", codex_home),
        ("the user's CODEX_HOME", settings.user_codex_home),
        ("CODEX_DATA_DIR", settings.codex_data_dir),
        ("the env file CODEX_ENV_FILE", env_file_path()),
        ("the gateway's directory", REPO_ROOT),
    ]


SHARED_TEMP = ("/tmp", "$TMPDIR")


def check_layout(settings: Settings, codex_home: Path, config: dict[str, Any]) -> None:
    """Raise ConfigError (one line) when Codex could write what configures it.

    A checkout under /tmp (a CI clone, a quick try) is the operator's own folder: the permission profile never lets
    a sandboxed command write /tmp, so the gateway's directory and what lies in it are held only to the workspaces.
    """
    roots = writable_roots(settings, config)
    for name, path in protected_paths(settings, codex_home):
        for root_name, root in roots:
            if root_name in SHARED_TEMP and inside(path, REPO_ROOT):
                continue
            if inside(path, root):
                raise ConfigError(
                    f"{name} ({path}) lies inside {root_name} ({root}), which Codex's sandbox can write: "
                    "move one of them (nothing Codex can write may configure Codex)"
                )
    hidden = protected_paths(settings, codex_home)[:4]  # not the env file, not the gateway's directory
    hidden += [("CODEX_DENY_READ", path) for path in settings.codex_deny_read]
    for name, path in hidden:
        for root_name, root in roots[: 1 + len(settings.codex_allowed_roots)]:
            if inside(root, path):
                raise ConfigError(
                    f"{root_name} ({root}) lies inside {name} ({path}): move it out (Codex's sandbox may not "
                    f"read {name}, and could write there)"
                )


def migrate_profile(settings: Settings) -> None:
    """Move override files from the old default profile folder (inside the workspace) to the new one, once.

    Only a file that Codex already runs with (identical to the file in CODEX_HOME) is moved: a file that differs
    may have been written by a sandboxed command, so it stays where it is, named in a warning, for the operator.
    """
    new = settings.codex_wrapper_profile_dir
    if new != REPO_ROOT / "codex_profile" or not OLD_PROFILE_DIR.is_dir():
        return
    home = codex_home_path(settings)
    for name, legacy, target in OVERRIDES:
        for old in (OLD_PROFILE_DIR / name, OLD_PROFILE_DIR / legacy):
            if not old.is_file() or (new / old.name).exists():
                continue
            installed = home / target
            if installed.is_file() and installed.read_bytes() == old.read_bytes():
                new.mkdir(parents=True, exist_ok=True)
                shutil.move(old, new / old.name)
                log.warning(
                    "moved %s to %s: the profile folder is no longer inside the workspace, where Codex could "
                    "write it (this message appears once)",
                    old,
                    new / old.name,
                )
            else:
                log.warning(
                    "%s is no longer read and was not moved: it differs from %s, and Codex could write it. "
                    "Review it, then move it to %s yourself (or delete it)",
                    old,
                    installed,
                    new,
                )


def private_temp_dir(settings: Settings) -> Path:
    """A folder of this process (0700) under CODEX_DATA_DIR for the gateway's own temp files: outside every root
    Codex's sandbox can write, and denied to its reads."""
    parent = settings.codex_data_dir / "tmp"
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        remove_abandoned(parent)
        return Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise ConfigError(f"cannot create a private temp folder in {parent}: {exc.strerror or exc}") from None


def remove_abandoned(parent: Path) -> None:
    """The folders of instances that died without cleaning up (killed): `run-<pid>-…` whose process is gone."""
    for folder in parent.glob("run-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and Path("/proc/self").exists():
            shutil.rmtree(folder, ignore_errors=True)
