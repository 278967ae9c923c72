"""CODEX_HOME preparation at startup: profile overrides copied in, or an isolated home built for the gateway."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from app.config import ConfigError, Settings

log = logging.getLogger("codex_wrapper")
# (file in CODEX_WRAPPER_PROFILE_DIR, legacy name, file in CODEX_HOME)
OVERRIDES = (("codex_agents.md", "agent.md", "AGENTS.md"), ("codex_config.toml", "config.toml", "config.toml"))


def profile_overrides(profile_dir: Path) -> dict[str, Path]:
    """CODEX_HOME file name → the override that replaces it; legacy names are honoured with a warning."""
    found: dict[str, Path] = {}
    for name, legacy, target in OVERRIDES:
        if (profile_dir / name).is_file():
            found[target] = profile_dir / name
        elif (profile_dir / legacy).is_file():
            log.warning("profile override %s uses the legacy name; rename it to %s", profile_dir / legacy, name)
            found[target] = profile_dir / legacy
    return found


def atomic_write(target: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def install(source: Path, target: Path) -> None:
    """Copy `source` over `target` atomically, keeping a timestamped backup of a different existing file."""
    data = source.read_bytes()
    if target.is_file():
        if target.read_bytes() == data:
            return
        backup = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6:06d}")
        shutil.copy2(target, backup)
        log.info("kept %s as %s", target, backup)
    atomic_write(target, data)
    log.info("installed %s as %s", source, target)


def isolated_home_dir(settings: Settings) -> Path:
    if settings.codex_isolated_home_dir is not None:
        return settings.codex_isolated_home_dir
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    source = f"{settings.user_codex_home}\0{settings.codex_wrapper_profile_dir}"
    tag = hashlib.sha256(source.encode()).hexdigest()[:12]
    return data / "codex-wrapper" / f"codex-home-{tag}"


def _build_isolated(home: Path, user_home: Path, overrides: dict[str, Path]) -> None:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    auth, link = user_home / "auth.json", home / "auth.json"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(auth)  # also before the login: once `codex login` writes it, Codex finds it (app/codex/login.py)
    for _, _, target in OVERRIDES:
        if target in overrides:
            atomic_write(home / target, overrides[target].read_bytes())
        else:
            (home / target).unlink(missing_ok=True)


def codex_home_path(settings: Settings) -> Path:
    """Where the CODEX_HOME Codex runs with is (prepared or not)."""
    return isolated_home_dir(settings) if settings.codex_isolated_home else settings.user_codex_home


def prepare_codex_home(settings: Settings) -> Path:
    """The CODEX_HOME Codex runs with, ready; a failure stops startup naming the path and the reason."""
    overrides = profile_overrides(settings.codex_wrapper_profile_dir)
    home = codex_home_path(settings)
    if settings.codex_isolated_home and home.resolve() == settings.user_codex_home.resolve():
        raise ConfigError(
            f"invalid setting CODEX_ISOLATED_HOME_DIR={str(home)!r}: allowed is a directory other than the "
            "user's CODEX_HOME (the gateway rewrites the isolated home)"
        )
    try:
        if settings.codex_isolated_home:
            _build_isolated(home, settings.user_codex_home, overrides)
        else:
            home.mkdir(parents=True, exist_ok=True)
            for target, source in overrides.items():
                install(source, home / target)
    except OSError as exc:
        path = exc.filename or home
        raise ConfigError(f"cannot prepare CODEX_HOME: {path}: {exc.strerror or exc}. {_ownership_fix(home)}") from None
    check_usable(home)
    return home


def _ownership_fix(home: Path) -> str:
    uid, gid = os.getuid(), os.getgid()
    return (
        f"Fix: `sudo chown -R {uid}:{gid}` it (in Docker: the host directory mounted there, e.g. ~/.codex; Docker "
        f"creates a missing one owned by root), or set CODEX_CONFIG_DIR to a directory uid {uid} owns"
    )


def check_usable(home: Path) -> None:
    """Codex writes its state, sessions and logs in CODEX_HOME and reads its login there: a home it cannot use
    would make every Codex process die at start. One line naming the path, the owner and the fix."""
    uid = os.getuid()
    problem = ""
    if not os.access(home, os.W_OK | os.X_OK):
        problem = f"CODEX_HOME {home} is not writable by uid {uid} (owner: uid {home.stat().st_uid})"
    elif (home / "auth.json").exists() and not os.access(home / "auth.json", os.R_OK):
        auth = home / "auth.json"
        problem = f"{auth} is not readable by uid {uid} (owner: uid {auth.stat().st_uid})"
    if problem:
        raise ConfigError(f"{problem}, so Codex cannot start. {_ownership_fix(home)}")
