"""App-server workers sealed in namespaces of their own: the denied paths hidden once per worker, no secret in reach.

Under a permission profile that denies paths, Codex 0.169 launches its sandboxed filesystem helper at every turn
(~37 ms of CPU: bubblewrap and 3 starts of the Codex binary, docs/BENCHMARKS.md). A sealed worker runs without a
profile. It is started under bubblewrap (`--unshare-user`), which hides, for the worker and everything it starts:

- the gateway's directory (an empty tmpfs), with its `node_modules` and any workspace inside it bound back;
- every other path of the layout's protected list (CODEX_HOME, the operator's Codex homes, CODEX_DATA_DIR, the env
  file, the profile folder, CODEX_DENY_READ): a directory under an empty tmpfs, a file under /dev/null.

The worker also gets a process namespace of its own (`--unshare-pid`, a fresh /proc): neither the gateway's
environment nor any other process of this machine is in its sight.

Codex itself still needs its home. The worker gets a view of it under /dev/shm (`VIEW_ROOT`): a folder of
CODEX_DATA_DIR for Codex's own state, the operator's instructions and rules bound in read-only, and a config.toml
the gateway writes from the real one with `cli_auth_credentials_store = "ephemeral"`. No login file is there: the
gateway hands the login over in memory (app/codex/login_handover.py). Codex verifies and reads some files in the
worker's own process, outside any command sandbox (apply_patch, view_image), so nothing the worker can open may
hold a secret: not a file of its view, not its environment (app/codex/env.py), not its descriptors (its session
runs on sockets, which /proc/self/fd cannot reopen). A config.toml that holds a credential (a provider's bearer
token, headers, an MCP server's environment) or a ChatGPT login keeps the permission profile. Codex's Linux sandbox
starts every command with a fresh /dev (`bwrap --dev /dev`), so no sandboxed command sees the view; `probe_seal`
checks exactly that through the real Codex at startup, and the gateway falls back to the profile when it does not
hold.

The seal is per worker, not per turn: with several API keys, each key's folder of CODEX_WORKDIR must be denied to
the others' turns, which one worker serving all keys cannot do, so those turns keep the profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from app.codex.binary import CodexBinary, kill_group
from app.codex.home import atomic_write
from app.codex.login_handover import read_handover
from app.codex.provider import read_config
from app.config import ConfigError, Settings
from app.policy.paths import inside
from app.policy.permissions import SandboxLayout, outermost
from app.policy.project_docs import DISCOVERY_OFF
from app.turn import RunPolicy

log = logging.getLogger("codex_wrapper")

VIEW_ROOT = Path("/dev/shm/codex-wrapper")  # under /dev: out of every sandboxed command's sight
# What the worker's CODEX_HOME view holds of the real one, read-only: the operator's instructions and rules, all
# text (view_image reads what the worker can, and finds no image here). Not `skills/`, whose assets may be images;
# not auth.json (handed over in memory); config.toml is the gateway's copy (`view_config`).
HOME_ENTRIES = ("AGENTS.md", "rules")
# Keys of config.toml that hold, or may hold, a credential: a worker with such a configuration keeps the profile.
# (`tool_output_token_limit` is no credential; `experimental_bearer_token`, `http_headers`, `client_secret` are.)
SECRET_KEY = re.compile(r"(^|_)(token|secret|password|credentials?|api_?key|headers?|env|auth)$|bearer", re.I)
# (`requires_openai_auth = true` is no credential: only text, tables and lists can hold one)
SYSTEM_BWRAP = Path("/usr/bin/bwrap")  # what Codex itself prefers to its bundled copy


def home_view(codex_home: Path) -> Path:
    """Where a sealed worker finds its CODEX_HOME: the real path under VIEW_ROOT (so tools can tell whose it is)."""
    return VIEW_ROOT / str(codex_home.resolve()).lstrip("/")


def find_bwrap(binary: CodexBinary) -> Path | None:
    """The system bubblewrap, else the one bundled with Codex's native package (codex-resources/bwrap)."""
    bundled = binary.path.resolve().parent.parent / "codex-resources" / "bwrap"
    for candidate in (SYSTEM_BWRAP, bundled):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _hide(path: Path, later: list[str], perms: str = "0000") -> list[str]:
    """Mounts that hide `path`; a folder's tmpfs is made read-only in `later`, once whatever lies inside is bound.
    Mode 0000: a command (no capabilities) gets `Permission denied`, as under the profile; 0111 for a folder with
    paths bound back inside (they stay reachable, the folder cannot be listed)."""
    if path.is_dir():
        later += ["--remount-ro", str(path)]
        return ["--perms", perms, "--tmpfs", str(path)]
    if path.exists():
        return ["--ro-bind", "/dev/null", str(path)]
    return []  # absent at the worker's start: nothing to hide (a worker's restart looks again)


@dataclass(frozen=True)
class WorkerSeal:
    bwrap: Path
    codex_home: Path
    state_dir: Path  # Codex's own state (databases, logs, its arg0 links), inside CODEX_DATA_DIR
    layout: SandboxLayout
    writable: tuple[Path, ...]  # workspaces: bound back writable when inside the hidden gateway directory
    config: Path  # the view's config.toml, written by `write_config` at each worker start (in CODEX_DATA_DIR)

    @property
    def view(self) -> Path:
        return home_view(self.codex_home)

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return {**env, "CODEX_HOME": str(self.view)}

    def write_config(self) -> None:
        try:
            text = view_config(self.codex_home)
        except ConfigError as exc:  # edited into something Codex cannot read: this start fails, and is retried
            raise OSError(str(exc)) from None
        atomic_write(self.config, text.encode())

    def argv(self) -> list[str]:
        """The bubblewrap command line a worker's `codex app-server` runs under (its arguments follow); writes the
        view's config.toml from the real one first (a worker's restart sees the operator's edits)."""
        self.write_config()
        args = [str(self.bwrap), "--unshare-user", "--unshare-pid", "--die-with-parent", "--dev-bind", "/", "/"]
        args += ["--proc", "/proc"]
        gateway = Path(os.path.realpath(self.layout.gateway_dir))
        visible = [Path(os.path.realpath(p)) for p in self.layout.visible]
        later: list[str] = []
        inner = outermost([p for p in visible if inside(p, gateway) and p != gateway and p.exists()])
        args += _hide(gateway, later, "0111" if inner else "0000")
        for path in inner:
            writable = any(inside(path, Path(os.path.realpath(w))) for w in self.writable)
            args += ["--bind" if writable else "--ro-bind", str(path), str(path)]
        for path in outermost([Path(os.path.realpath(p)) for p in self.layout.protected]):
            if not inside(path, gateway) or any(inside(path, v) for v in visible):
                args += _hide(path, later)
        args += later
        args += ["--tmpfs", "/dev/shm", "--bind", str(self.state_dir), str(self.view)]
        args += ["--ro-bind", str(self.config), str(self.view / "config.toml")]
        for name in HOME_ENTRIES:
            source = self.codex_home / name
            if source.exists():
                args += ["--ro-bind", str(source.resolve()), str(self.view / name)]
        return [*args, "--"]


def view_config(codex_home: Path) -> str:
    """The real config.toml with the login kept in memory only (no auth.json is written in the view)."""
    return tomli_w.dumps({**read_config(codex_home), "cli_auth_credentials_store": "ephemeral"})


def secret_keys(config: Any, prefix: str = "") -> list[str]:
    """Dotted names of config.toml entries that hold or may hold a credential."""
    found: list[str] = []
    if isinstance(config, dict):
        for key, value in config.items():
            name = f"{prefix}{key}"
            if SECRET_KEY.search(str(key)) and not isinstance(value, (bool, int, float)):
                found.append(name)
            else:
                found += secret_keys(value, f"{name}.")
    elif isinstance(config, list):
        for n, value in enumerate(config):
            found += secret_keys(value, f"{prefix}{n}.")
    return found


def make_seal(binary: CodexBinary, codex_home: Path, data_dir: Path, layout: SandboxLayout,
              writable: tuple[Path, ...]) -> WorkerSeal | None:  # fmt: skip
    bwrap = find_bwrap(binary)
    if bwrap is None:
        return None
    state = data_dir / "worker-home"
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    return WorkerSeal(bwrap, codex_home, state, layout, writable, data_dir / "worker-config.toml")


# The probe: Codex's read-only sandbox inside a sealed worker's namespace must run a command, and that command must
# see neither the worker's CODEX_HOME view nor the real CODEX_HOME's config.toml.
_SCRIPT = 'echo seal-probe-ran; for p in "$@"; do [ -e "$p" ] && echo "seal-probe-sees $p"; done; exit 0'


async def probe_seal(seal: WorkerSeal, binary: CodexBinary, env: dict[str, str], timeout: float = 30.0) -> str:
    """'' when a sandboxed command in a sealed worker runs and sees no secret; else what went wrong."""
    looked_for = [str(seal.view / "config.toml"), str(seal.view), str(seal.codex_home / "config.toml")]
    argv = [
        *seal.argv(), str(binary.path), "sandbox", "-c", 'sandbox_mode="read-only"', "--",
        "/bin/sh", "-c", _SCRIPT, "sh", *looked_for,
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="codex-wrapper-seal-probe-") as scratch:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=seal.env(env), cwd=scratch, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            return f"cannot run {seal.bwrap}: {exc}"
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            return f"the probe did not finish within {timeout:.0f} s"
        finally:
            kill_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
    text = out.decode(errors="replace")
    if "seal-probe-ran" not in text:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        return f"no command ran in a sealed worker ({(lines or ['no message'])[-1][:300]})"
    seen = [line.removeprefix("seal-probe-sees ") for line in text.splitlines() if line.startswith("seal-probe-sees")]
    return f"a sandboxed command saw {', '.join(seen)}" if seen else ""


def sealed_config(policy: RunPolicy) -> dict[str, Any]:
    """Thread config of an agent turn in a sealed worker: what the profile granted, in Codex's plain sandbox terms.
    /tmp and $TMPDIR stay unwritable; network only as the policy says; AGENTS.md read by the gateway (Codex would
    read it outside any sandbox here, past the denied paths). Codex keeps `.git`, `.codex` and `.agents` of a
    writable workspace read-only itself."""
    config: dict[str, Any] = dict(DISCOVERY_OFF)
    if policy.sandbox == "workspace-write":
        config["sandbox_workspace_write.exclude_slash_tmp"] = True
        config["sandbox_workspace_write.exclude_tmpdir_env_var"] = True
        config["sandbox_workspace_write.network_access"] = bool(policy.network_access)
    return config


async def choose_seal(
    settings: Settings, binary: CodexBinary, env: dict[str, str], codex_home: Path, layout: SandboxLayout
) -> WorkerSeal | None:
    """A seal for the app-server workers when it can keep every denied path out of reach here, else None (agent
    turns then run under the permission profile); the reason is logged either way."""
    if settings.codex_engine != "app-server":
        return None
    if not settings.codex_seal_workers:
        log.info("app-server workers not sealed: CODEX_SEAL_WORKERS=0; agent turns use the permission profile")
        return None
    if len(settings.api_keys) > 1:
        log.info("app-server workers not sealed: with several API keys each turn is denied the other keys' folders")
        return None
    why = unsealable(codex_home)
    if why:
        log.info("app-server workers not sealed: %s; agent turns use the permission profile", why)
        return None
    writable = (settings.codex_workdir, *settings.codex_allowed_roots)
    seal = make_seal(binary, codex_home, settings.codex_data_dir, layout, writable)
    if seal is None:
        log.warning("app-server workers not sealed: no bubblewrap found; agent turns use the permission profile")
        return None
    why = await probe_seal(seal, binary, env)
    if why:
        log.warning("app-server workers not sealed (%s); agent turns use the permission profile", why)
        return None
    log.info(
        "app-server workers sealed: denied paths hidden per worker, the login in Codex's memory only, agent turns "
        "without the permission profile"
    )
    return seal


def unsealable(codex_home: Path) -> str:
    """Why a sealed worker could not run with this home's login and configuration without a readable secret."""
    try:
        secrets = secret_keys(read_config(codex_home))
    except ConfigError as exc:
        return f"config.toml cannot be read ({exc})"
    if secrets:
        return f"config.toml holds what may be a credential ({', '.join(secrets[:5])})"
    login = read_handover(codex_home)
    if not login.sealable:
        return f"the login in auth.json ({login.kind}) cannot be handed to Codex in memory"
    return ""
