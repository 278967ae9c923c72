"""POST /v1/chat/completions: OpenAI Chat Completions over the neutral Turn."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from app.api.fields import CHAT_CHECKS, CHAT_IGNORED, CHAT_RULES, obfuscation
from app.api.files import file_part
from app.api.output import OutputFormat, StopCutter, chat_format, stop_strings
from app.api.params import check_extras
from app.api.streaming import SSE_HEADERS, sse, until_disconnect
from app.api.text_guard import TextCheckedRoute
from app.api.tool_history import chat_calls, chat_output, check_pairs
from app.api.tools import chat_call_deltas, chat_tool_call, chat_tools
from app.api.turn_start import Notes, StartedTurn, check_schemas, precheck, start_turn
from app.errors import failure_error, invalid
from app.gateway import Gateway, authorized
from app.images.fetch import ImageRef, MessageDraft, materialize
from app.schemas import SchemaChecker
from app.turn import Completed, Failed, ReasoningDelta, TextDelta, ToolCall, ToolOutput, TurnEvent, Usage, UsageReport

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


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_output_tokens},
    }


class ChunkWriter:
    """Chat completion chunks sharing one id, model and creation time."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._frame([choice])

    def usage(self, usage: Usage) -> bytes:
        return self._frame([], usage=usage_body(usage))

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        return sse({**body, "choices": choices, **extra})


@dataclass
class ChatRules:
    """What shapes the answer: reasoning shown or not, stop strings, the output format, older function calls."""

    show_reasoning: bool
    stops: tuple[str, ...]
    output: OutputFormat
    schemas: SchemaChecker
    legacy_functions: bool = False

    def finish_reason(self, calls: list[ToolCall]) -> str:
        if not calls:
            return "stop"
        return "function_call" if self.legacy_functions else "tool_calls"


async def stream_chunks(
    writer: ChunkWriter, started: StartedTurn, rules: ChatRules, include_usage: bool
) -> AsyncIterator[bytes]:
    usage, cutter, text = Usage(), StopCutter(rules.stops), []
    calls: list[ToolCall] = []
    events = started.events
    yield writer.chunk({"role": "assistant", "content": ""})
    try:
        event: TurnEvent | None = started.first
        while event is not None:
            if isinstance(event, TextDelta):
                if piece := cutter.feed(event.text):
                    text.append(piece)
                    yield writer.chunk({"content": piece})
                if cutter.stopped:  # closing the events below interrupts Codex
                    event = Completed("".join(text))
            elif isinstance(event, ReasoningDelta) and rules.show_reasoning:
                yield writer.chunk({"reasoning_content": event.text})
            elif isinstance(event, ToolCall):
                if rest := cutter.flush():
                    text.append(rest)
                    yield writer.chunk({"content": rest})
                for delta in chat_call_deltas(len(calls), event, rules.legacy_functions):
                    yield writer.chunk(delta)
                calls.append(event)
            elif isinstance(event, UsageReport):
                usage = event.usage
            if isinstance(event, Completed):
                if rest := cutter.flush():
                    text.append(rest)
                    yield writer.chunk({"content": rest})
                if not calls and (error := await rules.output.check("".join(text), rules.schemas)):
                    yield sse(error.body())
                    break
                yield writer.chunk({}, finish_reason=rules.finish_reason(calls))
                if include_usage:
                    yield writer.usage(usage)
                break
            if isinstance(event, Failed):
                yield sse(failure_error(event.kind.value, event.message, event.retry_at).body())
                break
            event = await anext(events, None)
        yield b"data: [DONE]\n\n"
    finally:
        await events.aclose()


@dataclass
class ChatAnswer:
    text: str
    reasoning: str
    usage: Usage
    calls: list[ToolCall]


async def collect(started: StartedTurn, rules: ChatRules) -> ChatAnswer:
    """The answer (cut at a stop string), the reasoning shown, usage and calls; failures raise their API error."""
    usage, cutter, reasoning = Usage(), StopCutter(rules.stops), []
    text: list[str] = []
    calls: list[ToolCall] = []
    event: TurnEvent | None = started.first
    try:
        while event is not None:
            if isinstance(event, TextDelta):
                text.append(cutter.feed(event.text))
                if cutter.stopped:
                    break
            elif isinstance(event, ReasoningDelta) and rules.show_reasoning:
                reasoning.append(event.text)
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, UsageReport):
                usage = event.usage
            elif isinstance(event, Completed):
                text.append(cutter.flush())
                break
            elif isinstance(event, Failed):
                raise failure_error(event.kind.value, event.message, event.retry_at)
            event = await anext(started.events, None)
        else:
            raise failure_error("crashed", "Codex ended the turn without an answer.")
    finally:
        await started.events.aclose()
    answer = "".join(text)
    if not calls and (error := await rules.output.check(answer, rules.schemas)):
        raise error
    return ChatAnswer(answer, "".join(reasoning), usage, calls)


def answer_message(answer: ChatAnswer, rules: ChatRules) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    if answer.calls:
        message["content"] = answer.text or None
        if rules.legacy_functions:
            message["function_call"] = {"name": answer.calls[0].name, "arguments": answer.calls[0].arguments}
        else:
            message["tool_calls"] = [chat_tool_call(call) for call in answer.calls]
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    return message


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
    await precheck(gateway, body.model, body.x_codex, extra.get("verbosity"))
    messages = await materialize(drafts, gateway.images)
    started = await start_turn(
        gateway,
        request,
        body.model,
        messages,
        body.x_codex,
        requested_effort=body.reasoning_effort,
        output=output,
        tools=tools,
        verbosity=extra.get("verbosity"),
        notes=notes,
    )
    rules = ChatRules(not started.turn.policy.hide_reasoning, stops, output, gateway.schemas, tools.legacy)
    headers = started.notes.headers()
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = stream_chunks(ChunkWriter(body.model), started, rules, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={**SSE_HEADERS, **headers})
    answer = await until_disconnect(request, collect(started, rules))
    completion = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": answer_message(answer, rules),
                "logprobs": None,
                "finish_reason": rules.finish_reason(answer.calls),
            }
        ],
        "usage": usage_body(answer.usage),
    }
    return JSONResponse(completion, headers=headers)
