"""What both endpoints do to start a turn, in one pass: the request resolved once (`resolve_request`), the Turn
built and checked (`prepare_turn`), then admitted (`admit`) up to its first event."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request

from app.api.output import JSON_OBJECT_INSTRUCTION, OutputFormat
from app.api.streaming import first_event
from app.api.tool_contract import tool_events
from app.api.tools import ToolRequest, must_call_instruction
from app.api.web_search import web_search_mode
from app.auth import bearer_token
from app.codex.catalog import ModelInfo
from app.errors import ApiError, invalid
from app.executor import BackgroundAdmission, Executor
from app.gateway import Gateway
from app.middleware.request_log import RequestStats
from app.policy.efforts import checked_verbosity, supported_effort
from app.policy.run_policy import XCodex, check_ceilings, parse_x_codex, resolve_policy
from app.policy.workspaces import user_workspace
from app.schemas import RefusedAt, SchemaChecker
from app.turn import Failed, FailureKind, Item, Message, ToolCall, ToolOutput, Turn, TurnEvent

IGNORED_HEADER = "x-codex-ignored-params"
ADJUSTED_HEADER = "x-codex-adjusted-params"
# A turn reaches Codex as one JSON line (app-server: turn/start, thread/inject_items) and comes back in notifications
# that echo it; the readers on both sides stop at 64 MiB. Refused well below that, before Codex sees it.
MAX_TURN_INPUT_BYTES = 48 * 1024 * 1024


@dataclass
class Notes:
    """What the response headers say: request values ignored, and values run as the nearest Codex supports."""

    ignored: list[str] = field(default_factory=list)
    adjusted: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        headers = {IGNORED_HEADER: ",".join(self.ignored)} if self.ignored else {}
        if self.adjusted:
            headers[ADJUSTED_HEADER] = ",".join(self.adjusted)
        return headers


@dataclass
class StartedTurn:
    turn: Turn
    first: TurnEvent
    events: AsyncGenerator[TurnEvent, None]
    notes: Notes = field(default_factory=Notes)


def _effort(value: str | None, model: ModelInfo, param: str, notes: Notes) -> str | None:
    """`value` as the model can run it; a change is noted as `param=asked->used`, a model without efforts as
    ignoring it."""
    if value is None:
        return None
    used = supported_effort(value, model, param)
    if used is None:
        notes.ignored.append(param)
    elif used != value:
        notes.adjusted.append(f"{param}={value}->{used}")
    return used


def _verbosity(value: str | None, model: ModelInfo, param: str, notes: Notes) -> str | None:
    """Codex passes a verbosity only to the models its catalog marks for it; for the others it is ignored."""
    if value is None:
        return None
    checked_verbosity(value, param)
    if not model.verbosity:
        notes.ignored.append(param)
        return None
    return value


@dataclass(frozen=True)
class TurnRequest:
    """What a request asks of its turn, resolved once, before anything costly (`resolve_request`: x_codex checked
    against the server's ceilings, the model or alias found, the verbosity checked, the login there); the endpoint
    adds what it reads later (`dataclasses.replace`): effort, reasoning summary, output format, tools."""

    model: ModelInfo
    alias_effort: str | None  # the effort a `"<model> <effort>"` alias names
    x_codex: XCodex
    verbosity: str | None = None
    verbosity_param: str = "verbosity"
    effort: str | None = None
    effort_param: str = "reasoning_effort"
    reasoning_summary: str | None = None
    output: OutputFormat = field(default_factory=OutputFormat)
    tools: ToolRequest = field(default_factory=ToolRequest)


async def resolve_request(
    gateway: Gateway, model_name: str, x_codex: Any, verbosity: str | None = None, verbosity_param: str = "verbosity"
) -> TurnRequest:
    """The cheap checks, run before work that costs (fetching images) so bad requests fail fast; then whether Codex
    is logged in (every endpoint that starts a turn calls this first)."""
    checked = parse_x_codex(x_codex)
    check_ceilings(gateway.settings, checked)
    model, alias_effort = gateway.catalog.resolve(model_name)
    if verbosity is not None:
        checked_verbosity(verbosity, verbosity_param)
    await gateway.require_login()
    return TurnRequest(model, alias_effort, checked, verbosity, verbosity_param)


@dataclass
class PreparedTurn:
    """A turn resolved and checked but not admitted yet: `events()` admits and runs it (`background`: see
    app/background)."""

    turn: Turn
    executor: Executor
    stats: RequestStats | None
    notes: Notes
    schemas: SchemaChecker

    def events(self, background: BackgroundAdmission | None = None) -> AsyncGenerator[TurnEvent, None]:
        def attempt() -> AsyncGenerator[TurnEvent, None]:
            return self.executor.events(self.turn, self.stats, background)

        if self.turn.tools:
            return self._contract_noted(tool_events(attempt, self.turn, self.schemas))
        return attempt()

    async def _contract_noted(self, events: AsyncGenerator[TurnEvent, None]) -> AsyncGenerator[TurnEvent, None]:
        """A broken contract counted like the executor's failures (metrics, the request's log line)."""
        try:
            async for event in events:
                if isinstance(event, Failed) and event.kind is FailureKind.BROKEN_CONTRACT:
                    self.executor.note(event, self.stats)
                yield event
        finally:
            await events.aclose()


async def admit(request: Request, prepared: PreparedTurn) -> StartedTurn:
    """Admit the prepared turn and wait for its first event (a failure before it is an HTTP error status: 429
    from admission, 5xx from Codex)."""
    events = prepared.events()
    return StartedTurn(prepared.turn, await first_event(request, events), events, prepared.notes)


def prepare_turn(
    gateway: Gateway, request: Request, asked: TurnRequest, messages: tuple[Item, ...], notes: Notes
) -> PreparedTurn:
    """Policy and the Turn from the resolved request (4xx, or 503 without Codex or its sandbox). `notes` (the
    endpoint's, with what it ignored already) gains what the model cannot take as asked."""
    model, checked, tools = asked.model, asked.x_codex, asked.tools
    requested = _effort(asked.effort, model, asked.effort_param, notes)
    if checked.reasoning_effort is not None:
        mapped = _effort(checked.reasoning_effort, model, "x_codex.reasoning_effort", notes)
        checked = replace(checked, reasoning_effort=mapped)
    effort = requested if asked.effort is not None else asked.alias_effort
    policy = resolve_policy(
        gateway.settings,
        gateway.providers,
        model,
        checked,
        requested_effort=effort,
        effort_param=asked.effort_param,
        reasoning_summary=asked.reasoning_summary,
        workspace=user_workspace(gateway.settings, bearer_token(request)),
        layout=gateway.layout,
    )
    check_input_size(messages)
    if asked.output.kind == "json_object":
        messages = (*messages, Message("developer", JSON_OBJECT_INSTRUCTION))
    if instruction := must_call_instruction(tools):
        messages = (*messages, instruction)
    turn = Turn(
        model=model.id,
        messages=messages,
        policy=policy,
        output_schema=asked.output.schema,
        tools=tools.offered,
        tool_choice=tools.choice,
        parallel_tool_calls=tools.parallel and not tools.legacy,
        verbosity=_verbosity(asked.verbosity, model, asked.verbosity_param, notes),
        web_search=web_search_mode(tools.web_search, gateway.settings, policy, notes.ignored, notes.adjusted),
    )
    executor = gateway.require_codex()
    gateway.require_sandbox(policy)
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
    return PreparedTurn(turn, executor, stats, notes, gateway.schemas)


async def check_schemas(gateway: Gateway, output: OutputFormat, tools: ToolRequest) -> None:
    """The request's JSON Schemas (function parameters, output schema), checked together off the event loop: a
    400 naming the first refused (app/schemas.py)."""
    try:
        await gateway.schemas.check([*tools.schemas(), *output.schemas()])
    except RefusedAt as refused:
        message = f"Invalid JSON Schema in '{refused.param}': {refused.reason}."
        raise invalid(message, param=refused.param, code=refused.code) from None


def item_size(item: Item) -> int:
    """Bytes an item takes in a JSON line (ASCII-escaped, as the gateway writes it)."""
    if isinstance(item, ToolCall):
        return len(json.dumps(item.name)) + len(json.dumps(item.arguments))
    if isinstance(item, ToolOutput):
        return len(json.dumps(item.output))
    return len(json.dumps(item.text)) + sum(len(url) + 2 for url in item.images)


def check_input_size(messages: tuple[Item, ...]) -> None:
    size = sum(item_size(item) for item in messages)
    if size > MAX_TURN_INPUT_BYTES:
        raise ApiError(
            413,
            f"The conversation is too large for one Codex turn ({size} bytes as JSON, at most "
            f"{MAX_TURN_INPUT_BYTES}): send fewer or smaller messages or images.",
            code="request_too_large",
        )
