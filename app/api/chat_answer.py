"""A Chat Completions answer built from TurnEvents: one builder for the streamed chunks and the JSON completion,
as the Responses API has (response_events.py)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from app.api.output import OutputFormat, StopCutter
from app.api.tools import chat_call_deltas, chat_tool_call
from app.errors import ApiError, failure_error
from app.schemas import SchemaChecker
from app.turn import Completed, Failed, ReasoningDelta, TextDelta, ToolCall, TurnEvent, Usage, UsageReport


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_output_tokens},
    }


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


class ChatBuilder:
    """Accumulates the answer; `feed` returns the stream chunks (bodies) each event produces (none when not
    `streaming`: the JSON form builds no chunk), `completion()` the JSON form. The answer is cut at the first stop
    string: then, as at Completed, the builder is `done` (the caller closes the events, which stops the turn). A
    failure (Failed, or an answer that fails the output format) ends it too: its error body is the stream's last
    chunk, and `failure` what the JSON form raises."""

    def __init__(self, model: str, rules: ChatRules, streaming: bool = True, include_usage: bool = False) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.rules = rules
        self.streaming = streaming
        self.include_usage = include_usage
        self.usage = Usage()
        self.calls: list[ToolCall] = []
        self.done = False
        self.failure: ApiError | None = None
        self._cutter = StopCutter(rules.stops)
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def text(self) -> str:
        return "".join(self._text)

    def start(self) -> list[dict[str, Any]]:
        return self._chunk({"role": "assistant", "content": ""})

    async def feed(self, event: TurnEvent) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        if isinstance(event, TextDelta):
            chunks += self._content(self._cutter.feed(event.text))
            if not self._cutter.stopped:
                return chunks
            event = Completed(self.text())
        elif isinstance(event, ReasoningDelta) and self.rules.show_reasoning:
            self._reasoning.append(event.text)
            chunks += self._chunk({"reasoning_content": event.text})
        elif isinstance(event, ToolCall):
            chunks += self._content(self._cutter.flush())
            if self.streaming:
                for delta in chat_call_deltas(len(self.calls), event, self.rules.legacy_functions):
                    chunks += self._chunk(delta)
            self.calls.append(event)
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        if isinstance(event, Completed):
            return chunks + await self._complete()
        if isinstance(event, Failed):
            return [*chunks, self._fail(failure_error(event.kind, event.message, event.retry_at))]
        return chunks

    async def _complete(self) -> list[dict[str, Any]]:
        chunks = self._content(self._cutter.flush())
        if not self.calls and (error := await self.rules.output.check(self.text(), self.rules.schemas)):
            return [*chunks, self._fail(error)]
        self.done = True
        chunks += self._chunk({}, finish_reason=self.rules.finish_reason(self.calls))
        if self.streaming and self.include_usage:
            chunks.append(self._frame([], usage=usage_body(self.usage)))
        return chunks

    def _fail(self, error: ApiError) -> dict[str, Any]:
        self.done, self.failure = True, error
        return error.body()

    def _content(self, piece: str) -> list[dict[str, Any]]:
        if not piece:
            return []
        self._text.append(piece)
        return self._chunk({"content": piece})

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
        if not self.streaming:
            return []
        return [self._frame([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])]

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        return {**body, "choices": choices, **extra}

    def message(self) -> dict[str, Any]:
        text = self.text()
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if self.calls:
            message["content"] = text or None
            if self.rules.legacy_functions:
                message["function_call"] = {"name": self.calls[0].name, "arguments": self.calls[0].arguments}
            else:
                message["tool_calls"] = [chat_tool_call(call) for call in self.calls]
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        return message

    def completion(self) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": self.message(),
            "logprobs": None,
            "finish_reason": self.rules.finish_reason(self.calls),
        }
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": usage_body(self.usage),
        }
