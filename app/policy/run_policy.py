"""What Codex may do for a turn: resolved from settings and validated request values only.

Nothing from the request reaches Codex as text: every value is checked against an enum or a type here,
and the RunPolicy carries only those checked values (paths after resolution).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.codex.catalog import ModelInfo
from app.codex.provider import ProviderResolver
from app.config import MODES, SANDBOX_MODES, ConfigError, Settings
from app.errors import ApiError, invalid
from app.policy.permissions import SandboxLayout
from app.turn import RunPolicy

X_CODEX_FIELDS = ("sandbox", "network_access", "reasoning_effort", "hide_reasoning", "cwd", "mode")
_MAX_PATH = 4096


@dataclass(frozen=True)
class XCodex:
    """The request's `x_codex` object, type-checked."""

    sandbox: str | None = None
    network_access: bool | None = None
    reasoning_effort: str | None = None
    hide_reasoning: bool | None = None
    cwd: str | None = None
    mode: str | None = None


def _allowed(param: str, value: Any, allowed: tuple[str, ...]) -> ApiError:
    return invalid(
        f"Invalid value for '{param}': {value!r}. Allowed: {', '.join(allowed)}.", param=param, code="invalid_value"
    )


def parse_x_codex(raw: Any) -> XCodex:
    if raw is None:
        return XCodex()
    if not isinstance(raw, dict):
        raise invalid("'x_codex' must be an object.", param="x_codex", code="invalid_type")
    for key in raw:
        if key not in X_CODEX_FIELDS:
            raise _allowed(f"x_codex.{key}", key, X_CODEX_FIELDS) from None
    fields: dict[str, Any] = {}
    for key in ("network_access", "hide_reasoning"):
        value = raw.get(key)
        if value is not None and not isinstance(value, bool):
            raise invalid(f"'x_codex.{key}' must be true or false.", param=f"x_codex.{key}", code="invalid_type")
        fields[key] = value
    for key in ("sandbox", "reasoning_effort", "cwd", "mode"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise invalid(f"'x_codex.{key}' must be a string.", param=f"x_codex.{key}", code="invalid_type")
        fields[key] = value
    if fields["sandbox"] is not None and fields["sandbox"] not in SANDBOX_MODES:
        raise _allowed("x_codex.sandbox", fields["sandbox"], SANDBOX_MODES)
    if fields["mode"] is not None and fields["mode"] not in MODES:
        raise _allowed("x_codex.mode", fields["mode"], MODES)
    return XCodex(**fields)


def validate_effort(value: str, model: ModelInfo, param: str) -> str:
    """A reasoning effort the model supports (as Codex's catalog says), else 400 naming the allowed ones."""
    if value not in model.efforts:
        raise invalid(
            f"Invalid value for '{param}': {value!r}. Allowed for {model.id}: {', '.join(model.efforts)}.",
            param=param,
            code="invalid_value",
        )
    return value


def allowed_roots(settings: Settings, workspace: Path | None = None) -> list[Path]:
    return [workspace or settings.codex_workdir, *settings.codex_allowed_roots]


def resolve_cwd(requested: str | None, settings: Settings, workspace: Path | None = None) -> Path:
    """The working directory: the caller's workspace (CODEX_WORKDIR, or its own folder there when the server has
    several keys), or a directory inside it or an allowed root (symlinks followed)."""
    base = workspace or settings.codex_workdir
    if requested is None:
        return base
    if not requested or "\0" in requested or len(requested) > _MAX_PATH:
        raise invalid("'x_codex.cwd' must be a directory path.", param="x_codex.cwd", code="invalid_value")
    candidate = Path(requested)
    if not candidate.is_absolute():
        candidate = base / candidate
    resolved = Path(os.path.realpath(candidate))
    roots = [Path(os.path.realpath(root)) for root in allowed_roots(settings, base)]
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        where = "your workspace" if base != settings.codex_workdir else "CODEX_WORKDIR"
        raise invalid(
            f"'x_codex.cwd' must be inside {where} or CODEX_ALLOWED_ROOTS.",
            param="x_codex.cwd",
            code="cwd_not_allowed",
        )
    if not resolved.is_dir():
        raise invalid("'x_codex.cwd' is not an existing directory.", param="x_codex.cwd", code="cwd_not_found")
    return resolved


def check_local_only(settings: Settings, providers: ProviderResolver) -> None:
    if not settings.codex_local_only:
        return
    try:
        provider = providers.current()
    except ConfigError as exc:
        raise invalid(
            f"CODEX_LOCAL_ONLY=1 and the provider cannot be checked: {exc}", code="provider_not_local"
        ) from None
    if not provider.is_local:
        where = provider.base_url or "no base_url defined"
        raise invalid(
            f"CODEX_LOCAL_ONLY=1 allows only a loopback model provider; Codex would use '{provider.name}' at {where}.",
            code="provider_not_local",
        )


def check_ceilings(settings: Settings, x_codex: XCodex) -> str:
    """The request's sandbox, within what the server lets clients choose; 400 naming the setting otherwise."""
    sandbox = x_codex.sandbox or settings.codex_sandbox_mode
    if sandbox == "danger-full-access" and not settings.codex_allow_danger_full_access:
        raise ApiError(
            400,
            "'danger-full-access' needs CODEX_ALLOW_DANGER_FULL_ACCESS=1 on the server.",
            param="x_codex.sandbox",
            code="sandbox_not_allowed",
        )
    allowed = (settings.codex_sandbox_mode, *settings.codex_client_sandbox_modes)
    if x_codex.sandbox is not None and x_codex.sandbox not in allowed:
        raise ApiError(
            400,
            f"'x_codex.sandbox' {x_codex.sandbox!r} is not allowed on this server: CODEX_CLIENT_SANDBOX_MODES "
            f"allows {', '.join(dict.fromkeys(allowed))}.",
            param="x_codex.sandbox",
            code="sandbox_not_allowed",
        )
    if x_codex.network_access is not None and sandbox != "workspace-write":
        raise invalid(
            f"'x_codex.network_access' applies only to the workspace-write sandbox (this request runs {sandbox}).",
            param="x_codex.network_access",
            code="invalid_value",
        )
    if x_codex.network_access and not settings.codex_client_network_access:
        raise ApiError(
            400,
            "'x_codex.network_access' true is not allowed on this server: CODEX_CLIENT_NETWORK_ACCESS is off.",
            param="x_codex.network_access",
            code="network_not_allowed",
        )
    return sandbox


def operator_network(providers: ProviderResolver) -> bool:
    """Network for workspace-write turns when the request does not say: config.toml's
    `sandbox_workspace_write.network_access` (the operator's), else off."""
    try:
        table = providers.config().get("sandbox_workspace_write")
    except ConfigError:
        return False
    return isinstance(table, dict) and table.get("network_access") is True


def resolve_policy(
    settings: Settings,
    providers: ProviderResolver,
    model: ModelInfo,
    x_codex: XCodex,
    *,
    requested_effort: str | None = None,
    effort_param: str = "reasoning_effort",
    reasoning_summary: str | None = None,
    workspace: Path | None = None,
    layout: SandboxLayout | None = None,
) -> RunPolicy:
    """The one place that decides what Codex may do for a request. `workspace`: the caller's folder of
    CODEX_WORKDIR (own folder with several keys); `layout`: the paths no sandboxed command may read."""
    sandbox = check_ceilings(settings, x_codex)
    effort: str = settings.codex_reasoning_effort
    if requested_effort is not None:
        effort = validate_effort(requested_effort, model, effort_param)
    if x_codex.reasoning_effort is not None:
        effort = validate_effort(x_codex.reasoning_effort, model, "x_codex.reasoning_effort")
    cwd = resolve_cwd(x_codex.cwd, settings, workspace)
    check_local_only(settings, providers)
    hide = settings.codex_hide_reasoning if x_codex.hide_reasoning is None else x_codex.hide_reasoning
    network = None
    if sandbox == "workspace-write":
        network = operator_network(providers) if x_codex.network_access is None else x_codex.network_access
    return RunPolicy(
        sandbox=sandbox,
        network_access=network,
        denied=layout.denied(workspace) if layout is not None else (),
        reasoning_effort=effort,
        hide_reasoning=hide,
        cwd=cwd,
        mode=x_codex.mode or settings.codex_mode,
        reasoning_summary=None if hide else reasoning_summary,
    )
