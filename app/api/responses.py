"""POST /v1/responses (+ GET/DELETE /v1/responses/{id}, input_items): the Responses API over the Turn."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from app.api.fields import RESPONSES_CHECKS, RESPONSES_IGNORED, RESPONSES_RULES
from app.api.output import OutputFormat, responses_format
from app.api.params import check_extras
from app.api.response_events import ResponseBuilder
from app.api.response_input import expand_references, to_messages
from app.api.streaming import SSE_HEADERS, until_disconnect
from app.api.tool_history import check_pairs
from app.api.tools import responses_tool_object, responses_tools
from app.api.turns import Notes, check_schemas, precheck, start_turn
from app.auth import bearer_token
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
)

router = APIRouter()

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
    x_codex: Any = None


def check_params(extra: dict[str, Any]) -> list[str]:
    return check_extras(extra, RESPONSES_IGNORED, RESPONSES_RULES, RESPONSES_CHECKS)


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
    builder: ResponseBuilder, first: TurnEvent, events: AsyncIterator[TurnEvent], rules: ResponseRules, finish: Any
) -> AsyncIterator[bytes]:
    try:
        for event in builder.start():
            yield _frame(event)
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
    builder: ResponseBuilder, first: TurnEvent, events: AsyncIterator[TurnEvent], rules: ResponseRules
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
async def create_response(body: ResponsesRequest, request: Request, gateway: Gateway = Depends(authorized)):
    extra = body.model_extra or {}
    notes = Notes(check_params(extra))
    owner = owner_of(request, gateway)
    raw = body.input if isinstance(body.input, str) else await expand_references(body.input, store_of(gateway), owner)
    drafts, input_items = to_messages(raw)
    tools = responses_tools(extra)
    verbosity = extra["text"].get("verbosity") if isinstance(extra.get("text"), dict) else None
    precheck(gateway, body.model, body.x_codex, verbosity, "text.verbosity")
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
    started = await start_turn(
        gateway,
        request,
        body.model,
        (*instructions, *conversation),
        body.x_codex,
        requested_effort=reasoning.effort,
        effort_param="reasoning.effort",
        reasoning_summary=summary,
        output=output,
        tools=tools,
        verbosity=verbosity,
        verbosity_param="text.verbosity",
        notes=notes,
    )
    policy = started.turn.policy
    builder = ResponseBuilder(
        {
            "model": body.model,
            "instructions": body.instructions,
            "previous_response_id": body.previous_response_id,
            "metadata": body.metadata or {},
            "store": body.store is not False,
            "reasoning": {"effort": policy.reasoning_effort, "summary": policy.reasoning_summary},
            "text": {"format": format_object(output), "verbosity": started.turn.verbosity},
            "tools": [responses_tool_object(spec) for spec in tools.tools],
            "tool_choice": tools.choice_body,
            "parallel_tool_calls": tools.parallel,
            "temperature": extra.get("temperature"),
            "top_p": extra.get("top_p"),
            "max_output_tokens": extra.get("max_output_tokens"),
            "user": extra.get("user"),
        }
    )
    rules = ResponseRules(not policy.hide_reasoning, output, gateway.schemas)

    async def finish() -> None:
        if body.store is not False and builder.status in ("completed", "failed"):
            answer: tuple[Item, ...] = ()
            if builder.status == "completed":
                text = builder.text()
                answer = (*((Message("assistant", text),) if text or not builder.calls() else ()), *builder.calls())
            stored = StoredResponse(builder.response(), input_items, (*conversation, *answer))
            if not await store_of(gateway).keep(owner, stored):  # the answer still goes out (non-stream: named)
                headers[NOT_STORED_HEADER] = "store unavailable"

    headers = started.notes.headers()
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
async def get_response(response_id: str, request: Request, gateway: Gateway = Depends(authorized)) -> dict[str, Any]:
    return (await _owned(gateway, request, response_id)).response


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request, gateway: Gateway = Depends(authorized)) -> dict[str, Any]:
    if not await store_of(gateway).delete(owner_of(request, gateway), response_id):
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
