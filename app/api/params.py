"""The request fields an endpoint does not model itself: ignored (and named), honoured elsewhere, or refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.errors import invalid

# A rule: whether a value can be accepted, and why it cannot when it is not.
Rule = tuple[Callable[[Any], bool], str]
# A check: validates a value (a 400 for a bad one) and returns what of it is not honoured, as header entries.
Check = Callable[[Any], list[str]]


def absent(value: Any) -> bool:
    return value is None


def falsy(value: Any) -> bool:
    return not value


def anything(_value: Any) -> bool:
    return True


def check_extras(
    extra: dict[str, Any], ignored: tuple[str, ...], rules: dict[str, Rule], checks: dict[str, Check] | None = None
) -> list[str]:
    """Refuse what cannot be honoured, by name (400); return the accepted-but-ignored fields that were set."""
    named = []
    checks = checks or {}
    for name, value in extra.items():
        if name in ignored:
            if value is not None:
                named.append(name)
        elif name in checks:
            if value is not None:
                named += checks[name](value)
        elif name in rules:
            accepts, why = rules[name]
            if not accepts(value):
                message = f"'{name}' is not supported by this gateway: {why}."
                raise invalid(message, param=name, code="unsupported_parameter")
        else:
            raise invalid(f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")
    return named
