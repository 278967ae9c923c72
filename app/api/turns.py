"""What both endpoints do to start a turn: model, policy, admission, and the first event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from app.api.output import JSON_OBJECT_INSTRUCTION, OutputFormat
from app.api.streaming import first_event
from app.auth import bearer_token
from app.errors import ApiError
from app.gateway import Gateway
from app.observability import RequestStats
from app.policy import check_ceilings, parse_x_codex, resolve_policy
from app.turn import Message, Turn, TurnEvent
from app.workspaces import user_workspace

# A turn reaches Codex as one JSON line (app-server: turn/start, thread/inject_items) and comes back in notifications
# that echo it; the readers on both sides stop at 64 MiB. Refused well below that, before Codex sees it.
MAX_TURN_INPUT_BYTES = 48 * 1024 * 1024


@dataclass
class StartedTurn:
    turn: Turn
    first: TurnEvent
    events: AsyncIterator[TurnEvent]


async def start_turn(
    gateway: Gateway,
    request: Request,
    model_name: str,
    messages: tuple[Message, ...],
    x_codex: Any,
    *,
    requested_effort: str | None = None,
    effort_param: str = "reasoning_effort",
    reasoning_summary: str | None = None,
    output: OutputFormat = OutputFormat(),
) -> StartedTurn:
    """Resolve model and policy, admit the turn, and wait for its first event (a failure before it is an
    HTTP error status: 4xx from validation, 429 from admission, 5xx from Codex)."""
    checked = parse_x_codex(x_codex)
    model, alias_effort = gateway.catalog.resolve(model_name)
    effort = requested_effort if requested_effort is not None else alias_effort
    policy = resolve_policy(
        gateway.settings,
        gateway.providers,
        model,
        checked,
        requested_effort=effort,
        effort_param=effort_param,
        reasoning_summary=reasoning_summary,
        workspace=user_workspace(gateway.settings, bearer_token(request)),
        layout=gateway.layout,
    )
    check_input_size(messages)
    if output.kind == "json_object":
        messages = (*messages, Message("developer", JSON_OBJECT_INSTRUCTION))
    turn = Turn(model=model.id, messages=messages, policy=policy, output_schema=output.schema)
    executor = gateway.require_codex()
    stats: RequestStats | None = getattr(request.state, "stats", None)
    if stats is not None:
        stats.model, stats.engine = model.id, executor.engine.name
    events = executor.events(turn, stats)
    return StartedTurn(turn, await first_event(request, events), events)


def precheck(gateway: Gateway, model_name: str, x_codex: Any) -> None:
    """The cheap checks of start_turn, run before work that costs (fetching images) so bad requests fail fast."""
    check_ceilings(gateway.settings, parse_x_codex(x_codex))
    gateway.catalog.resolve(model_name)


def input_size(messages: tuple[Message, ...]) -> int:
    """Bytes the messages take in a JSON line (ASCII-escaped, as the gateway writes it: Codex's echo is no longer)."""
    return sum(len(json.dumps(m.text)) + sum(len(url) + 2 for url in m.images) for m in messages)


def check_input_size(messages: tuple[Message, ...]) -> None:
    size = input_size(messages)
    if size > MAX_TURN_INPUT_BYTES:
        raise ApiError(
            413,
            f"The conversation is too large for one Codex turn ({size} bytes as JSON, at most "
            f"{MAX_TURN_INPUT_BYTES}): send fewer or smaller messages or images.",
            code="request_too_large",
        )


def ignored_header(ignored: list[str]) -> dict[str, str]:
    return {"x-codex-ignored-params": ",".join(ignored)} if ignored else {}
