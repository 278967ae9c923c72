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


@dataclass(frozen=True)
class ToolCall:
    """The model calling one of the client's functions: a TurnEvent, and the assistant's item in a history."""

    call_id: str
    name: str  # the client's own name for the function
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class ToolOutput:
    """What the client's function returned for a call (a history item)."""

    call_id: str
    output: str


Item = Message | ToolCall | ToolOutput  # one step of a conversation


def encode_history(items: tuple[Item, ...]) -> list[dict[str, Any]]:
    """A conversation as JSON-ready objects, for the response store (images are not kept)."""
    encoded: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, ToolCall):
            call = {"call_id": item.call_id, "name": item.name, "arguments": item.arguments}
            encoded.append({"kind": "tool_call", **call})
        elif isinstance(item, ToolOutput):
            encoded.append({"kind": "tool_output", "call_id": item.call_id, "output": item.output})
        else:
            encoded.append({"role": item.role, "text": item.text})
    return encoded


def decode_history(raw: list[dict[str, Any]]) -> tuple[Item, ...]:
    decoded: list[Item] = []
    for entry in raw:
        kind = entry.get("kind", "message")
        if kind == "tool_call":
            decoded.append(ToolCall(entry["call_id"], entry["name"], entry["arguments"]))
        elif kind == "tool_output":
            decoded.append(ToolOutput(entry["call_id"], entry["output"]))
        else:
            decoded.append(Message(entry["role"], entry["text"]))
    return tuple(decoded)


@dataclass(frozen=True)
class ToolSpec:
    """A function the client offers the model."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    strict: bool = False  # the arguments must match `parameters`
    namespace: str | None = None  # a Responses `namespace` tool's (then `name` is "namespace.own_name")
    kind: str = "function"  # Responses: function, custom (one string argument `input`) or tool_search (tool_shapes.py)

    @property
    def custom(self) -> bool:
        return self.kind == "custom"

    @property
    def own_name(self) -> str:
        """The name inside its namespace."""
        return self.name[len(self.namespace) + 1 :] if self.namespace else self.name


@dataclass(frozen=True)
class ToolChoice:
    """auto: the model may call a function; required: it must call one (`name`: that one)."""

    mode: Literal["auto", "required"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class RunPolicy:
    """What Codex may do for one turn, resolved by policy.py from validated values only."""

    sandbox: str
    reasoning_effort: str
    hide_reasoning: bool
    cwd: Path
    network_access: bool | None = None  # workspace-write only; None: off
    denied: tuple[str, ...] = ()  # absolute paths the turn's sandboxed commands may not read (policy/permissions.py)
    mode: str = "agent"  # agent: Codex with its shell and workspace; chat: a plain model, no tools
    reasoning_summary: str | None = None  # auto | concise | detailed | none; None: Codex's default


@dataclass(frozen=True)
class Turn:
    model: str
    messages: tuple[Item, ...]
    policy: RunPolicy
    output_schema: dict[str, Any] | None = None  # the JSON Schema Codex must answer in
    tools: tuple[ToolSpec, ...] = ()  # the client's functions offered to the model
    tool_choice: ToolChoice = ToolChoice()
    parallel_tool_calls: bool = True
    verbosity: str | None = None  # low | medium | high (Codex's model_verbosity); None: config.toml decides
    web_search: str | None = None  # cached | live (Codex's `web_search`), for a Responses web_search tool; None: as is


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
    USAGE_LIMIT = "usage_limit"  # the ChatGPT plan's usage limit is reached (app/codex/plan_limits.py)
    TIMEOUT = "timeout"  # CODEX_TIMEOUT ran out
    CRASHED = "crashed"  # Codex itself failed or exited without an answer
    BROKEN_CONTRACT = "broken_contract"  # the model's answer broke what the request required (tool_choice, strict)
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
    retry_at: float | None = None  # Unix seconds when a retry may work (a reached plan limit's reset)


@dataclass(frozen=True)
class WebSearch:
    """A web search the model ran (a hosted tool: the provider searches), as the Responses `action` shapes it."""

    action: dict[str, Any]


TurnEvent = TextDelta | ReasoningDelta | ToolCall | WebSearch | UsageReport | Completed | Failed
TERMINAL = (Completed, Failed)


@dataclass
class TurnResult:
    """A finished turn gathered from its events (non-stream answers)."""

    text: str = ""
    reasoning: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
