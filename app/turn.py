"""The neutral turn model between the API adapters and the engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    text: str
    images: tuple[str, ...] = ()  # data URLs (the gateway fetched any http(s) image already)


def encode_history(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """A conversation as JSON-ready objects, for the response store (images are not kept)."""
    return [{"role": m.role, "text": m.text} for m in messages]


def decode_history(raw: list[dict[str, Any]]) -> tuple[Message, ...]:
    return tuple(Message(m["role"], m["text"]) for m in raw)


@dataclass(frozen=True)
class RunPolicy:
    """What Codex may do for one turn, resolved by policy.py from validated values only."""

    sandbox: str
    reasoning_effort: str
    hide_reasoning: bool
    cwd: Path
    network_access: bool | None = None  # workspace-write only; None: off
    denied: tuple[str, ...] = ()  # absolute paths the turn's sandboxed commands may not read (app/permissions.py)
    mode: str = "agent"  # agent: Codex with its shell and workspace; chat: a plain model, no tools
    reasoning_summary: str | None = None  # auto | concise | detailed | none; None: Codex's default


@dataclass(frozen=True)
class Turn:
    model: str
    messages: tuple[Message, ...]
    policy: RunPolicy
    output_schema: dict[str, Any] | None = None  # the JSON Schema Codex must answer in


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class FailureKind(StrEnum):
    UPSTREAM = "upstream"  # the model provider failed
    RATE_LIMITED = "rate_limited"  # the model provider refused for quota or rate
    TIMEOUT = "timeout"  # CODEX_TIMEOUT ran out
    CRASHED = "crashed"  # Codex itself failed or exited without an answer
    UNAVAILABLE = "unavailable"  # Codex cannot be started


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True)
class Completed:
    text: str


@dataclass(frozen=True)
class Failed:
    kind: FailureKind
    message: str


TurnEvent = TextDelta | ReasoningDelta | UsageReport | Completed | Failed
TERMINAL = (Completed, Failed)


@dataclass
class TurnResult:
    """A finished turn gathered from its events (non-stream answers)."""

    text: str = ""
    reasoning: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
