"""What Codex may do for a turn: resolved from settings and validated request values only."""

from __future__ import annotations

from app.config import REASONING_EFFORTS, Settings
from app.errors import invalid
from app.turn import RunPolicy


def validate_effort(value: str, param: str) -> str:
    effort = value.strip().lower()
    if effort not in REASONING_EFFORTS:
        raise invalid(
            f"Invalid value for '{param}': {value!r}. Allowed: {', '.join(REASONING_EFFORTS)}.",
            param=param,
            code="invalid_value",
        )
    return effort


def resolve_policy(settings: Settings, *, reasoning_effort: str | None = None) -> RunPolicy:
    """The RunPolicy for one request; `reasoning_effort` must already be validated."""
    return RunPolicy(
        sandbox=settings.codex_sandbox_mode,
        reasoning_effort=reasoning_effort or settings.codex_reasoning_effort,
        hide_reasoning=settings.codex_hide_reasoning,
        cwd=settings.codex_workdir.resolve(),
    )
