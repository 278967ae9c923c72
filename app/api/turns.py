"""What both endpoints do to start a turn: model, policy, admission, and the first event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from app.api.output import JSON_OBJECT_INSTRUCTION, OutputFormat
from app.api.streaming import first_event
from app.api.tool_contract import tool_events
from app.api.tools import ToolRequest, must_call_instruction
from app.errors import invalid
from app.gateway import Gateway
from app.observability import RequestStats
from app.policy import parse_x_codex, resolve_policy
from app.turn import Item, Message, Turn, TurnEvent


@dataclass
class StartedTurn:
    turn: Turn
    first: TurnEvent
    events: AsyncIterator[TurnEvent]


async def start_turn(
    gateway: Gateway,
    request: Request,
    model_name: str,
    messages: tuple[Item, ...],
    x_codex: Any,
    *,
    requested_effort: str | None = None,
    effort_param: str = "reasoning_effort",
    reasoning_summary: str | None = None,
    output: OutputFormat = OutputFormat(),
    tools: ToolRequest = ToolRequest(),
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
    )
    if output.kind == "json_object":
        messages = (*messages, Message("developer", JSON_OBJECT_INSTRUCTION))
    if instruction := must_call_instruction(tools):
        messages = (*messages, instruction)
    turn = Turn(
        model=model.id,
        messages=messages,
        policy=policy,
        output_schema=output.schema,
        tools=tools.offered,
        tool_choice=tools.choice,
        parallel_tool_calls=tools.parallel and not tools.legacy,
    )
    executor = gateway.require_codex()
    if turn.tools and not executor.engine.client_tools:
        param = "functions" if tools.legacy else "tools"
        message = (
            f"'{param}' needs the app-server engine (CODEX_ENGINE=app-server): the {executor.engine.name} engine "
            "cannot hand function calls back to the client."
        )
        raise invalid(message, param=param, code="unsupported_parameter")
    stats: RequestStats | None = getattr(request.state, "stats", None)
    if stats is not None:
        stats.model, stats.engine = model.id, executor.engine.name
    events = tool_events(executor, turn, stats) if turn.tools else executor.events(turn, stats)
    return StartedTurn(turn, await first_event(request, events), events)


def precheck(gateway: Gateway, model_name: str, x_codex: Any) -> None:
    """The cheap checks of start_turn, run before work that costs (fetching images) so bad requests fail fast."""
    parse_x_codex(x_codex)
    gateway.catalog.resolve(model_name)


def ignored_header(ignored: list[str]) -> dict[str, str]:
    return {"x-codex-ignored-params": ",".join(ignored)} if ignored else {}
