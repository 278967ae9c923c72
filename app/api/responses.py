"""POST /v1/responses (+ GET/DELETE /v1/responses/{id}, input_items): the Responses API over the Turn."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from app.api.fields import RESPONSES_CHECKS, RESPONSES_IGNORED, RESPONSES_RULES
from app.api.output import OutputFormat, responses_format
from app.api.params import check_extras
from app.api.response_events import ResponseBuilder
from app.api.response_input import expand_references, to_messages
from app.api.streaming import SSE_HEADERS, until_disconnect
from app.api.text_guard import TextCheckedRoute
from app.api.tool_history import check_pairs
from app.api.tools import ToolRequest, responses_tool_object, responses_tools
from app.api.turn_start import Notes, admit, check_schemas, prepare_turn, resolve_request
from app.api.web_search import search_includes
from app.auth import bearer_token
from app.background.follow import follow, sse
from app.background.runs import ACTIVE
from app.errors import ApiError, invalid
from app.gateway import Gateway, authorized
from app.images import materialize
from app.schemas import SchemaChecker
from app.store import ResponseStore, StoredResponse
from app.turn import (
    Completed,
    Failed,
    Item,
    Message,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    TurnEvent,
    Usage,
    UsageReport,
    WebSearch,
)

router = APIRouter(route_class=TextCheckedRoute)

NOT_STORED_HEADER = "x-codex-not-stored"
SUMMARIES = ("auto", "concise", "detailed", "none")
CONTEXTS = ("auto", "current_turn", "all_turns")


class Reasoning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None  # the older name of `summary`
    context: str | None = None  # which earlier reasoning the model sees: none here (see response_input.py)
    mode: str | None = None  # standard | pro: Codex runs one mode


def note_reasoning(reasoning: Reasoning, notes: Notes) -> None:
    """`reasoning.context` all_turns runs as current_turn (earlier reasoning is never replayed); a `mode` other
    than standard is not available."""
    if reasoning.context is not None and reasoning.context not in CONTEXTS:
        raise invalid(
            f"Invalid value for 'reasoning.context': {reasoning.context!r}. Allowed: {', '.join(CONTEXTS)}.",
            param="reasoning.context",
            code="invalid_value",
        )
    if reasoning.context == "all_turns":
        notes.adjusted.append("reasoning.context=all_turns->current_turn")
    if reasoning.mode not in (None, "standard"):
        notes.ignored.append("reasoning.mode")


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[Any]
    instructions: str | None = None
    reasoning: Reasoning | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None  # null or left out: true
    previous_response_id: str | None = None
    stream: bool | None = False
    background: bool | None = None
    x_codex: Any = None


def check_params(extra: dict[str, Any]) -> list[str]:
    return check_extras(extra, RESPONSES_IGNORED, RESPONSES_RULES, RESPONSES_CHECKS)


def echoed_tools(raw: Any, tools: ToolRequest) -> list[Any]:
    """The request's `tools` as the response object echoes them: functions in full, other tools as given."""
    specs = {spec.name: spec for spec in tools.tools}
    return [
        responses_tool_object(specs[tool["name"]])
        if isinstance(tool, dict) and tool.get("type") == "function" and tool.get("name") in specs
        else tool
        for tool in (raw if isinstance(raw, list) else [])
    ]


def format_object(output: OutputFormat) -> dict[str, Any]:
    if output.kind == "json_schema":
        return {"type": "json_schema", "name": output.name, "schema": output.schema, "strict": True}
    return {"type": output.kind}


def owner_of(request: Request, gateway: Gateway) -> str:
    """Whose stored responses these are: a hash of the API key (never the key), or everyone's with auth off."""
    token = bearer_token(request) if gateway.settings.api_keys else None
    return hashlib.sha256(token.encode()).hexdigest() if token else "anonymous"


def store_of(gateway: Gateway) -> ResponseStore:
    return gateway.store


@dataclass(frozen=True)
class ResponseRules:
    show_reasoning: bool
    output: OutputFormat
    schemas: SchemaChecker


async def stream_events(
    builder: ResponseBuilder,
    first: TurnEvent,
    events: AsyncGenerator[TurnEvent, None],
    rules: ResponseRules,
    finish: Any,
) -> AsyncIterator[bytes]:
    try:
        for opening in builder.start():
            yield _frame(opening)
        event: TurnEvent | None = first
        while event is not None:
            for out in await _render(builder, event, rules):
                yield _frame(out)
            if isinstance(event, Completed | Failed):
                break
            event = await anext(events, None)
        await finish()
    finally:
        await events.aclose()


def _frame(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def _render(builder: ResponseBuilder, event: TurnEvent, rules: ResponseRules) -> list[dict[str, Any]]:
    if isinstance(event, TextDelta):
        return builder.on_text(event.text)
    if isinstance(event, ToolCall):
        return builder.on_tool_call(event)
    if isinstance(event, WebSearch):
        return builder.on_web_search(event)
    if isinstance(event, ReasoningDelta):
        return builder.on_reasoning(event.text) if rules.show_reasoning else []
    if isinstance(event, UsageReport):
        builder.usage = event.usage
    elif isinstance(event, Completed):
        if not builder.calls() and (error := await rules.output.check(builder.text(), rules.schemas)):
            return builder.fail(error)
        return builder.complete(builder.usage or Usage())
    elif isinstance(event, Failed):
        return builder.fail(event)
    return []


async def collect(
    builder: ResponseBuilder, first: TurnEvent, events: AsyncGenerator[TurnEvent, None], rules: ResponseRules
) -> None:
    event: TurnEvent | None = first
    try:
        while event is not None:
            await _render(builder, event, rules)
            if isinstance(event, Completed | Failed):
                return
            event = await anext(events, None)
    finally:
        await events.aclose()


@router.post("/v1/responses")
async def create_response(body: ResponsesRequest, request: Request, gateway: Gateway = Depends(authorized)) -> Response:
    extra = body.model_extra or {}
    if body.background and body.store is False:
        raise invalid(
            "A background response is stored so that it can be retrieved: 'background' needs 'store' true.",
            param="background",
            code="invalid_value",
        )
    notes = Notes(check_params(extra))
    owner = owner_of(request, gateway)
    raw = body.input if isinstance(body.input, str) else await expand_references(body.input, store_of(gateway), owner)
    drafts, input_items = to_messages(raw, notes.ignored)
    tools = responses_tools(extra, raw)
    notes.ignored += [name for name in tools.ignored if name not in notes.ignored]
    notes.adjusted += list(tools.adjusted)
    notes.ignored += search_includes(tools.web_search, extra.get("include"))
    verbosity = extra["text"].get("verbosity") if isinstance(extra.get("text"), dict) else None
    asked = await resolve_request(gateway, body.model, body.x_codex, verbosity, "text.verbosity")
    history: tuple[Item, ...] = ()
    if body.previous_response_id is not None:
        previous = await store_of(gateway).get(owner, body.previous_response_id)
        if previous is None:
            raise ApiError(
                404,
                f"Previous response with id '{body.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        if previous.response.get("status") in ACTIVE:  # a background response still running has no answer yet
            raise invalid(
                f"Previous response with id '{body.previous_response_id}' is still {previous.response['status']}: "
                "wait until it has ended.",
                param="previous_response_id",
                code="invalid_value",
            )
        history = previous.conversation
    reasoning = body.reasoning or Reasoning()
    note_reasoning(reasoning, notes)
    summary = reasoning.summary or reasoning.generate_summary
    if summary is not None and summary not in SUMMARIES:
        raise invalid(
            f"Invalid value for 'reasoning.summary': {summary!r}. Allowed: {', '.join(SUMMARIES)}.",
            param="reasoning.summary",
            code="invalid_value",
        )
    if body.metadata is not None and len(body.metadata) > 16:
        raise invalid("'metadata' holds at most 16 keys.", param="metadata", code="invalid_value")
    output = responses_format(extra.get("text"))
    await check_schemas(gateway, output, tools)
    new_messages = await materialize(drafts, gateway.images)
    conversation = (*history, *new_messages)
    check_pairs([item for item in conversation if not isinstance(item, Message)], chat=False)
    instructions = (Message("developer", body.instructions),) if body.instructions else ()
    asked = replace(
        asked, effort=reasoning.effort, effort_param="reasoning.effort", reasoning_summary=summary, output=output,
        tools=tools,
    )  # fmt: skip
    prepared = prepare_turn(gateway, request, asked, (*instructions, *conversation), notes)
    if not body.background:
        started = await admit(request, prepared)
    turn = prepared.turn
    policy = turn.policy
    builder = ResponseBuilder(
        {
            "model": body.model,
            "background": bool(body.background),
            "instructions": body.instructions,
            "previous_response_id": body.previous_response_id,
            "metadata": body.metadata or {},
            "store": body.store is not False,
            "reasoning": {"effort": policy.reasoning_effort, "summary": policy.reasoning_summary},
            "text": {"format": format_object(output), "verbosity": turn.verbosity},
            "tools": echoed_tools(extra.get("tools"), tools),
            "tool_choice": tools.choice_body,
            "parallel_tool_calls": tools.parallel,
            "temperature": extra.get("temperature"),
            "top_p": extra.get("top_p"),
            "max_output_tokens": extra.get("max_output_tokens"),
            "user": extra.get("user"),
        },
        tools.tools,
    )
    rules = ResponseRules(not policy.hide_reasoning, output, gateway.schemas)

    def snapshot() -> StoredResponse:
        """The response as stored: with a completed answer, the conversation goes on with it."""
        answer: tuple[Item, ...] = ()
        if builder.status == "completed":
            text = builder.text()
            answer = (*((Message("assistant", text),) if text or not builder.calls() else ()), *builder.calls())
        return StoredResponse(builder.response(), input_items, (*conversation, *answer))

    async def finish() -> None:
        if body.store is False or builder.status not in ("completed", "failed"):
            return
        if not await store_of(gateway).keep(owner, snapshot()):  # the answer still goes out (non-stream: named)
            headers[NOT_STORED_HEADER] = "store unavailable"

    headers = notes.headers()
    if body.background:
        run = await gateway.background.launch(
            owner, builder, snapshot, prepared.events, lambda event: _render(builder, event, rules)
        )
        if body.stream:
            stream = sse(follow(gateway.background, owner, run.id, -1))
            return StreamingResponse(stream, media_type="text/event-stream", headers={**SSE_HEADERS, **headers})
        return JSONResponse(run.builder.response(), headers=headers)
    if body.stream:
        stream = stream_events(builder, started.first, started.events, rules, finish)
        return StreamingResponse(stream, media_type="text/event-stream", headers={**SSE_HEADERS, **headers})
    await until_disconnect(request, collect(builder, started.first, started.events, rules))
    await finish()
    if builder.failure is not None:  # a failure after the first event: the same status as before it
        raise builder.failure
    return JSONResponse(builder.response(), headers=headers)


async def _owned(gateway: Gateway, request: Request, response_id: str) -> StoredResponse:
    stored = await store_of(gateway).get(owner_of(request, gateway), response_id)
    if stored is None:
        raise ApiError(404, f"No response found with id '{response_id}'.", param="response_id", code="not_found")
    return stored


@router.get("/v1/responses/{response_id}")
async def get_response(
    response_id: str,
    request: Request,
    gateway: Gateway = Depends(authorized),
    stream: bool = False,
    starting_after: int | None = Query(None, ge=-1, le=2**31 - 1),
) -> Any:
    """The stored response (a background one as it stands); `stream`: a background response's events after
    `starting_after`, then the live ones to the end."""
    stored = await _owned(gateway, request, response_id)
    owner = owner_of(request, gateway)
    if not stream:
        return await gateway.background.current(owner, stored)
    if not stored.response.get("background"):
        raise invalid(
            "Only responses created with background=true can be streamed again.", param="stream", code="invalid_value"
        )
    after = -1 if starting_after is None else starting_after
    return StreamingResponse(
        sse(follow(gateway.background, owner, response_id, after)), media_type="text/event-stream", headers=SSE_HEADERS
    )


@router.post("/v1/responses/{response_id}/cancel")
async def cancel_response(response_id: str, request: Request, gateway: Gateway = Depends(authorized)) -> Any:
    """Cancel a background response (here or on the instance running it); a finished one is refused, except a
    cancelled one, which is answered again."""
    stored = await _owned(gateway, request, response_id)
    owner = owner_of(request, gateway)
    if not stored.response.get("background"):
        raise invalid("Only responses created with background=true can be cancelled.", code="invalid_value")
    status = stored.response.get("status")
    if status in ACTIVE:
        response = await gateway.background.cancel(owner, response_id)
        if response is None:
            raise ApiError(404, f"No response found with id '{response_id}'.", param="response_id", code="not_found")
        return response
    if status == "cancelled":
        return stored.response
    raise invalid(f"Cannot cancel a {status} response.", code="invalid_value")


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request, gateway: Gateway = Depends(authorized)) -> dict[str, Any]:
    owner = owner_of(request, gateway)
    stored = await store_of(gateway).get(owner, response_id)
    if stored is not None and stored.response.get("background") and stored.response.get("status") in ACTIVE:
        await gateway.background.cancel(owner, response_id)  # else its runner would store it again
    if not await store_of(gateway).delete(owner, response_id):
        raise ApiError(404, f"No response found with id '{response_id}'.", param="response_id", code="not_found")
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    request: Request,
    gateway: Gateway = Depends(authorized),
    order: str = Query("desc", pattern="^(asc|desc)$"),
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
) -> dict[str, Any]:
    items = list((await _owned(gateway, request, response_id)).input_items)
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
