"""A requested reasoning effort or verbosity as the model can take it: the nearest value it supports.

Clients send what the OpenAI API accepts (the Agents SDK sends effort "none" for gpt-5.x names, for example);
Codex's catalog says which efforts each model supports. An effort the model lacks becomes the nearest one it has
(named by the caller in x-codex-adjusted-params); a word that is no effort at all is a 400.
"""

from __future__ import annotations

from app.codex.catalog import ModelInfo
from app.config import REASONING_EFFORTS
from app.errors import invalid

EFFORT_ORDER = REASONING_EFFORTS  # lowest to highest
VERBOSITIES = ("low", "medium", "high")


def supported_effort(value: str, model: ModelInfo, param: str) -> str | None:
    """The effort to run `value` with: itself when the model supports it; else the lowest supported effort for one
    below them all (`none`, `minimal`), the highest for one above them all, the next higher for one in between.
    None when the model takes no effort at all. 400 for a value that is no effort."""
    if value in model.efforts:
        return value
    if value not in EFFORT_ORDER:
        known = (*EFFORT_ORDER, *(e for e in model.efforts if e not in EFFORT_ORDER))
        raise invalid(
            f"Invalid value for '{param}': {value!r}. Allowed: {', '.join(known)}.", param=param, code="invalid_value"
        )
    ranked = sorted((e for e in model.efforts if e in EFFORT_ORDER), key=EFFORT_ORDER.index)
    if not ranked:
        return None
    wanted = EFFORT_ORDER.index(value)
    return next((e for e in ranked if EFFORT_ORDER.index(e) > wanted), ranked[-1])


def checked_verbosity(value: str, param: str) -> str:
    if value not in VERBOSITIES:
        raise invalid(
            f"Invalid value for '{param}': {value!r}. Allowed: {', '.join(VERBOSITIES)}.",
            param=param,
            code="invalid_value",
        )
    return value
