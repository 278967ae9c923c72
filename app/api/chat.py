"""POST /v1/chat/completions: OpenAI Chat Completions over the neutral Turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from app.api.chat_answer import ChatBuilder, ChatRules
from app.api.fields import CHAT_CHECKS, CHAT_IGNORED, CHAT_RULES, obfuscation
from app.api.files import file_part
from app.api.output import chat_format, stop_strings
from app.api.params import check_extras
from app.api.streaming import SSE_HEADERS, sse, until_disconnect
from app.api.text_guard import TextCheckedRoute
from app.api.tool_history import chat_calls, chat_output, check_pairs
from app.api.tools import chat_tools
from app.api.turn_start import Notes, StartedTurn, admit, check_schemas, prepare_turn, resolve_request
from app.errors import failure_error, invalid
from app.gateway import Gateway, authorized
from app.images import ImageRef, MessageDraft, materialize
from app.turn import FailureKind, ToolCall, ToolOutput, TurnEvent

router = APIRouter(route_class=TextCheckedRoute)

MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# reasoning_content: this gateway's own answers carry it, and clients send those back; accepted, not replayed
MESSAGE_KEYS = (
    "role", "content", "name", "refusal", "annotations", "tool_calls", "function_call", "audio", "tool_call_id",
    "reasoning_content",
)  # fmt: skip


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[dict[str, Any]]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    reasoning_effort: str | None = None
    x_codex: Any = None


def check_params(extra: dict[str, Any]) -> list[str]:
    return check_extras(extra, CHAT_IGNORED, CHAT_RULES, CHAT_CHECKS)


def _content(content: Any, param: str, role: str) -> tuple[str, tuple[ImageRef, ...]]:
    if content is None or isinstance(content, str):
        return content or "", ()
    if not isinstance(content, list):
        raise invalid(f"Invalid type for '{param}': expected a string or an array of content parts.", param=param)
    texts, images = [], []
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and role == "user":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if not isinstance(url, str) or not url:
                raise invalid(f"'{where}.image_url.url' must be a URL.", param=f"{where}.image_url.url")
            images.append(ImageRef(url, f"{where}.image_url.url"))
        elif kind == "file" and isinstance(part.get("file"), dict):
            given = file_part(part["file"], f"{where}.file", images_allowed=role == "user")
            if given.image is not None:
                images.append(given.image)
            else:
                texts.append(given.text or "")
        elif kind in ("image_url", "input_audio", "file"):
            message = f"Content parts of type '{kind}' are not supported in {role} messages."
            raise invalid(message, param=where, code="unsupported_content")
        else:
            raise invalid(f"Invalid content part at '{where}': expected {{'type': 'text', 'text': ...}}.", param=where)
    return "\n".join(texts), tuple(images)


def to_messages(raw: list[dict[str, Any]]) -> list[MessageDraft | ToolCall | ToolOutput]:
    """The conversation: messages, and the function calls and outputs between them, in order."""
    if not raw:
        raise invalid("'messages' must contain at least one message.", param="messages", code="empty_array")
    items: list[MessageDraft | ToolCall | ToolOutput] = []
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        role = item.get("role")
        if role not in MESSAGE_ROLES:
            raise invalid(
                f"Invalid value for '{where}.role': {role!r}. Allowed: {', '.join(MESSAGE_ROLES)}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        for key, value in item.items():
            if key == "audio" and value:
                message = f"'{where}.audio' is not supported: audio is not available through Codex."
                raise invalid(message, param=f"{where}.{key}", code="unsupported_parameter")
            if key not in MESSAGE_KEYS:
                message = f"Unrecognized argument in '{where}': {key}"
                raise invalid(message, param=f"{where}.{key}", code="unknown_parameter")
        if role in ("tool", "function"):
            items.append(chat_output(item, where, items))
            continue
        text, images = _content(item.get("content"), f"{where}.content", role)
        if role == "assistant" and not text and isinstance(item.get("refusal"), str):
            text = item["refusal"]  # an earlier refusal is what the assistant said
        calls = chat_calls(item, index) if role == "assistant" else []
        if text or images or not calls:
            items.append(MessageDraft(role, text, images))
        items += calls
    if not any(not isinstance(d, MessageDraft) or d.text.strip() or d.images for d in items):
        raise invalid("'messages' contain no text.", param="messages")
    check_pairs([i for i in items if not isinstance(i, MessageDraft)], chat=True)
    return items


async def stream_chunks(builder: ChatBuilder, started: StartedTurn) -> AsyncIterator[bytes]:
    events = started.events
    try:
        for chunk in builder.start():
            yield sse(chunk)
        event: TurnEvent | None = started.first
        while event is not None and not builder.done:
            for chunk in await builder.feed(event):
                yield sse(chunk)
            if not builder.done:  # at a stop string the builder is done: closing the events interrupts Codex
                event = await anext(events, None)
        yield b"data: [DONE]\n\n"
    finally:
        await events.aclose()


async def collect(builder: ChatBuilder, started: StartedTurn) -> dict[str, Any]:
    """The completion (cut at a stop string); a failure raises its API error."""
    event: TurnEvent | None = started.first
    try:
        while event is not None and not builder.done:
            await builder.feed(event)
            if not builder.done:
                event = await anext(started.events, None)
    finally:
        await started.events.aclose()
    if not builder.done:
        raise failure_error(FailureKind.CRASHED, "Codex ended the turn without an answer.")
    if builder.failure is not None:
        raise builder.failure
    return builder.completion()


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request, gateway: Gateway = Depends(authorized)) -> Response:
    extra = body.model_extra or {}
    notes = Notes(check_params(extra))
    if body.stream_options is not None:
        notes.ignored += obfuscation(body.stream_options.model_dump())
    drafts = to_messages(body.messages)
    output = chat_format(extra.get("response_format"))
    stops = stop_strings(extra.get("stop"))
    tools = chat_tools(extra)
    await check_schemas(gateway, output, tools)
    asked = await resolve_request(gateway, body.model, body.x_codex, extra.get("verbosity"))
    messages = await materialize(drafts, gateway.images)
    asked = replace(asked, effort=body.reasoning_effort, output=output, tools=tools)
    started = await admit(request, prepare_turn(gateway, request, asked, messages, notes))
    rules = ChatRules(not started.turn.policy.hide_reasoning, stops, output, gateway.schemas, tools.legacy)
    headers = started.notes.headers()
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = stream_chunks(ChatBuilder(body.model, rules, include_usage=include_usage), started)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={**SSE_HEADERS, **headers})
    completion = await until_disconnect(request, collect(ChatBuilder(body.model, rules, streaming=False), started))
    return JSONResponse(completion, headers=headers)
