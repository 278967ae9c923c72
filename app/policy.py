"""What Codex may do for a turn: resolved from settings and validated request values only."""

from __future__ import annotations

from app.catalog import ModelInfo
from app.config import Settings
from app.errors import invalid
from app.turn import RunPolicy


def validate_effort(value: str, model: ModelInfo, param: str) -> str:
    """A reasoning effort the model supports (as Codex's catalog says), else 400 naming the allowed ones."""
    effort = value.strip().lower()
    if effort not in model.efforts:
        raise invalid(
            f"Invalid value for '{param}': {value!r}. Allowed for {model.id}: {', '.join(model.efforts)}.",
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
