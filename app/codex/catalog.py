"""Model discovery from the Codex CLI, and the `"<model> <effort>"` aliases."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.codex.binary import CodexBinary, kill_group
from app.errors import ApiError

log = logging.getLogger("codex_wrapper")
# Offered as aliases for a model whose supported efforts Codex does not know (a custom provider's).
FALLBACK_EFFORTS = ("low", "medium", "high")


@dataclass(frozen=True)
class ModelInfo:
    id: str
    efforts: tuple[str, ...]
    verbosity: bool = False  # Codex sends a text verbosity (config `model_verbosity`) to this model


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelInfo, ...]
    created: int

    def resolve(self, name: str, param: str = "model") -> tuple[ModelInfo, str | None]:
        """`"gpt-5.5"` → (model, None); `"gpt-5.5 high"` → (model, "high"); else 404."""
        wanted = " ".join(name.split())
        by_id = {model.id: model for model in self.models}
        if wanted in by_id:
            return by_id[wanted], None
        base, _, effort = wanted.rpartition(" ")
        model = by_id.get(base)
        if model is not None and effort.lower() in model.efforts:
            return model, effort.lower()
        raise ApiError(
            404,
            f"The model '{name}' does not exist. GET /v1/models lists the available ones.",
            param=param,
            code="model_not_found",
        )

    def ids(self) -> list[str]:
        names: list[str] = []
        for model in self.models:
            names.append(model.id)
            names.extend(f"{model.id} {effort}" for effort in model.efforts)
        return names


def configured_models(home: Path) -> list[str]:
    """`model` of config.toml and of each of its profiles, the active profile's first."""
    try:
        config = tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        log.warning("cannot read %s: %s", home / "config.toml", exc)
        return []
    profiles: dict[str, Any] = config.get("profiles") or {}
    active = profiles.get(str(config.get("profile", ""))) or {}
    candidates = [active.get("model"), config.get("model")]
    candidates += [profile.get("model") for profile in profiles.values() if isinstance(profile, dict)]
    seen: list[str] = []
    for name in candidates:
        if isinstance(name, str) and name.strip() and name.strip() not in seen:
            seen.append(name.strip())
    return seen


def parse_debug_models(raw: bytes) -> list[ModelInfo]:
    """The listed (not hidden) models of `codex debug models` output."""
    data = json.loads(raw)
    models = []
    for entry in sorted(data.get("models", []), key=lambda m: m.get("priority", 0)):
        if entry.get("visibility", "list") != "list" or not entry.get("slug"):
            continue
        efforts = tuple(
            str(level["effort"]) for level in entry.get("supported_reasoning_levels", []) if level.get("effort")
        )
        models.append(ModelInfo(entry["slug"], efforts, entry.get("support_verbosity") is True))
    return models


async def _run_debug_models(binary: CodexBinary, env: dict[str, str], timeout: float) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        str(binary.path),
        "debug",
        "models",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        kill_group(proc.pid)
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace").strip()[-300:] or f"exit {proc.returncode}")
    return out


async def discover(binary: CodexBinary | None, env: dict[str, str], codex_home: Path, timeout: float = 20.0) -> Catalog:
    """Codex's model catalog plus the configured models; never empty."""
    discovered: list[ModelInfo] = []
    if binary is not None:
        try:
            discovered = parse_debug_models(await _run_debug_models(binary, env, timeout))
        except (OSError, TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("model discovery through `codex debug models` failed (%s); serving configured models", exc)
    known = {model.id: model for model in discovered}
    configured = configured_models(codex_home) or ([] if discovered else ["gpt-5.5"])
    models = [known.get(name) or ModelInfo(name, FALLBACK_EFFORTS) for name in configured]
    models += [model for model in discovered if model.id not in configured]
    return Catalog(tuple(models), int(time.time()))
