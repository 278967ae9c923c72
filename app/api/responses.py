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

from app.api.output import OutputFormat, responses_format
from app.api.params import Rule, absent, anything, check_extras, falsy
from app.api.response_events import ResponseBuilder, new_id
from app.api.streaming import SSE_HEADERS, until_disconnect
from app.api.tool_history import check_pairs, listed, responses_item
from app.api.tools import responses_tool_object, responses_tools
from app.api.turns import ignored_header, precheck, start_turn
from app.auth import bearer_token
from app.errors import ApiError, invalid
from app.gateway import Gateway, authorized
from app.images import ImageRef, MessageDraft, materialize
from app.store import ResponseStore, StoredResponse
from app.turn import (
    Completed,
    Failed,
    Item,
    Message,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolOutput,
    TurnEvent,
    Usage,
    UsageReport,
)

router = APIRouter()

IGNORED_PARAMS = (
    "temperature", "top_p", "max_output_tokens", "user", "service_tier", "truncation", "prompt_cache_key",
    "prompt_cache_retention", "safety_identifier", "max_tool_calls", "top_logprobs",
    "stream_options",
)  # fmt: skip
ROLES = ("user", "assistant", "system", "developer")
SUMMARIES = ("auto", "concise", "detailed", "none")


class Reasoning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None  # the older name of `summary`


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[Any]
    instructions: str | None = None
    reasoning: Reasoning | None = None
    metadata: dict[str, str] | None = None
    store: bool = True
    previous_response_id: str | None = None
    stream: bool = False
    x_codex: Any = None


RULES: dict[str, Rule] = {
    "tools": (anything, ""),  # honoured: responses_tools (as are the next two)
    "tool_choice": (anything, ""),
    "parallel_tool_calls": (anything, ""),
    "include": (falsy, "no extra output data is available"),
    "background": (falsy, "background responses are not available"),
    "prompt": (absent, "not available through Codex"),
    "conversation": (absent, "not available through Codex"),
    "text": (anything, ""),  # honoured: responses_format
}


def check_params(extra: dict[str, Any]) -> list[str]:
    return check_extras(extra, IGNORED_PARAMS, RULES)


def _parts(content: Any, where: str, role: str) -> tuple[str, tuple[ImageRef, ...]]:
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise invalid(f"Invalid type for '{where}': expected a string or an array of content parts.", param=where)
    texts, images = [], []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_image" and role == "user" and isinstance(part.get("image_url"), str):
            images.append(ImageRef(part["image_url"], f"{at}.image_url"))
        elif kind in ("input_image", "input_file", "input_audio", "refusal"):
            why = "file ids" if kind == "input_image" and part.get("file_id") else f"parts of type '{kind}' here"
            raise invalid(f"This gateway does not take {why}.", param=at, code="unsupported_content")
        else:
            raise invalid(f"Invalid content part at '{at}'.", param=at, code="invalid_value")
    return "\n".join(texts), tuple(images)


def to_messages(raw: str | list[Any]) -> tuple[list[MessageDraft | ToolCall | ToolOutput], list[dict[str, Any]]]:
    """The input as message drafts, function calls and outputs, and as the input items the API lists for this
    response. Reasoning items (a client sending back an earlier output whole) are accepted and left out: Codex
    keeps no reasoning between turns."""
    items: list[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    if not items:
        raise invalid("'input' must not be empty.", param="input", code="empty_array")
    drafts: list[MessageDraft | ToolCall | ToolOutput] = []
    listed_items: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid(f"Invalid item at '{where}': expected an object.", param=where)
        kind = item.get("type", "message")
        if kind in ("function_call", "function_call_output"):
            step = responses_item(item, where)
            drafts.append(step)
            listed_items.append(listed(step, item.get("id") or new_id("fc" if kind == "function_call" else "fco")))
            continue
        if kind == "reasoning":
            continue
        if kind != "message":
            raise invalid(
                f"Input items of type '{kind}' are not supported.", param=f"{where}.type", code="unsupported_input"
            )
        role = item.get("role")
        if role not in ROLES:
            raise invalid(
                f"Invalid value for '{where}.role': {role!r}. Allowed: {', '.join(ROLES)}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        text, images = _parts(item.get("content"), f"{where}.content", role)
        drafts.append(MessageDraft(role, text, images))
        part = "output_text" if role == "assistant" else "input_text"
        content: list[dict[str, Any]] = [{"type": part, "text": text}] if text or not images else []
        content += [{"type": "input_image", "image_url": ref.url, "detail": "auto"} for ref in images]
        listed_items.append(
            {
                "id": item.get("id") or new_id("msg"),
                "type": "message",
                "role": role,
                "status": "completed",
                "content": content,
            }
        )
    return drafts, listed_items


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


async def stream_events(
    builder: ResponseBuilder, first: TurnEvent, events: AsyncIterator[TurnEvent], rules: ResponseRules, finish: Any
) -> AsyncIterator[bytes]:
    try:
        for event in builder.start():
            yield _frame(event)
        event: TurnEvent | None = first
        while event is not None:
            for out in _render(builder, event, rules):
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


def _render(builder: ResponseBuilder, event: TurnEvent, rules: ResponseRules) -> list[dict[str, Any]]:
    if isinstance(event, TextDelta):
        return builder.on_text(event.text)
    if isinstance(event, ToolCall):
        return builder.on_tool_call(event)
    if isinstance(event, ReasoningDelta):
        return builder.on_reasoning(event.text) if rules.show_reasoning else []
    if isinstance(event, UsageReport):
        builder.usage = event.usage
    elif isinstance(event, Completed):
        if not builder.calls() and (error := rules.output.check(builder.text())):
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
            _render(builder, event, rules)
            if isinstance(event, Completed | Failed):
                return
            event = await anext(events, None)
    finally:
        await events.aclose()


@router.post("/v1/responses")
async def create_response(body: ResponsesRequest, request: Request, gateway: Gateway = Depends(authorized)):
    ignored = check_params(body.model_extra or {})
    drafts, input_items = to_messages(body.input)
    tools = responses_tools(body.model_extra or {})
    precheck(gateway, body.model, body.x_codex)
    owner = owner_of(request, gateway)
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
    summary = reasoning.summary or reasoning.generate_summary
    if summary is not None and summary not in SUMMARIES:
        raise invalid(
            f"Invalid value for 'reasoning.summary': {summary!r}. Allowed: {', '.join(SUMMARIES)}.",
            param="reasoning.summary",
            code="invalid_value",
        )
    if body.metadata is not None and len(body.metadata) > 16:
        raise invalid("'metadata' holds at most 16 keys.", param="metadata", code="invalid_value")
    output = responses_format((body.model_extra or {}).get("text"))
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
    )
    policy = started.turn.policy
    builder = ResponseBuilder(
        {
            "model": body.model,
            "instructions": body.instructions,
            "previous_response_id": body.previous_response_id,
            "metadata": body.metadata or {},
            "store": body.store,
            "reasoning": {"effort": policy.reasoning_effort, "summary": policy.reasoning_summary},
            "text": {"format": format_object(output)},
            "tools": [responses_tool_object(spec) for spec in tools.tools],
            "tool_choice": tools.choice_body,
            "parallel_tool_calls": tools.parallel,
            "temperature": (body.model_extra or {}).get("temperature"),
            "top_p": (body.model_extra or {}).get("top_p"),
            "max_output_tokens": (body.model_extra or {}).get("max_output_tokens"),
            "user": (body.model_extra or {}).get("user"),
        }
    )
    rules = ResponseRules(not policy.hide_reasoning, output)

    async def finish() -> None:
        if body.store and builder.status in ("completed", "failed"):
            answer: tuple[Item, ...] = ()
            if builder.status == "completed":
                text = builder.text()
                answer = (*((Message("assistant", text),) if text or not builder.calls() else ()), *builder.calls())
            stored = StoredResponse(builder.response(), input_items, (*conversation, *answer))
            await store_of(gateway).put(owner, stored)

    headers = ignored_header(ignored)
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
