"""The Responses API object and its streaming events, built from TurnEvents (one builder for both forms)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from app.api.tool_shapes import custom_input, tool_search_arguments
from app.errors import ApiError, failure_error
from app.turn import Failed, ToolCall, ToolSpec, Usage, WebSearch


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_output_tokens},
        "total_tokens": usage.total_tokens,
    }


class ResponseBuilder:
    """Accumulates output items; every method returns the stream events its step produces, numbered."""

    def __init__(self, fields: dict[str, Any], specs: tuple[ToolSpec, ...] = ()) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.fields = fields  # model, instructions, metadata, … as the request set them
        self.output: list[dict[str, Any]] = []
        self.status = "in_progress"
        self.error: dict[str, Any] | None = None
        self.usage: Usage | None = None
        self.failure: ApiError | None = None
        self._open: dict[str, Any] | None = None  # the output item being streamed
        self._sequence = 0
        self._specs = {spec.name: spec for spec in specs}  # how each call is shaped: function, custom, namespace
        self._calls: list[ToolCall] = []

    def response(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "error": self.error,
            "incomplete_details": None,
            "output": self.output,
            "usage": usage_body(self.usage) if self.usage else None,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            **self.fields,
        }

    def text(self) -> str:
        return "".join(part["text"] for item in self.output if item["type"] == "message" for part in item["content"])

    def calls(self) -> list[ToolCall]:
        """The answer's calls as the conversation keeps them (by the gateway's names for the tools)."""
        return list(self._calls)

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        return [*self.created(), *self.in_progress()]

    def created(self) -> list[dict[str, Any]]:
        return [self._event("response.created", response=self.response())]

    def in_progress(self) -> list[dict[str, Any]]:
        self.status = "in_progress"
        return [self._event("response.in_progress", response=self.response())]

    def _open_item(self, kind: str) -> list[dict[str, Any]]:
        events = self._close_item()
        index = len(self.output)
        if kind == "message":
            item: dict[str, Any] = {
                "id": new_id("msg"), "type": "message", "status": "in_progress", "role": "assistant", "content": [],
            }  # fmt: skip
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(self._event("response.output_item.added", output_index=index, item=dict(item)))
            item["content"] = [part]
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=dict(part),
                )
            )
        else:
            item = {"id": new_id("rs"), "type": "reasoning", "summary": []}
            part = {"type": "summary_text", "text": ""}
            events.append(self._event("response.output_item.added", output_index=index, item=dict(item)))
            item["summary"] = [part]
            events.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part=dict(part),
                )
            )
        self.output.append(item)
        self._open = item
        return events

    def _close_item(self) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        index = self.output.index(item)
        if item["type"] == "message":
            part = item["content"][0]
            item["status"] = "completed"
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            return [
                self._event("response.output_text.done", **ids, text=part["text"], logprobs=[]),
                self._event("response.content_part.done", **ids, part=part),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        part = item["summary"][0]
        ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
        return [
            self._event("response.reasoning_summary_text.done", **ids, text=part["text"]),
            self._event("response.reasoning_summary_part.done", **ids, part=part),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def on_text(self, delta: str) -> list[dict[str, Any]]:
        events = self._open_item("message") if not self._open or self._open["type"] != "message" else []
        item = self._open
        assert item is not None
        item["content"][0]["text"] += delta
        ids = {"item_id": item["id"], "output_index": self.output.index(item), "content_index": 0}
        return [*events, self._event("response.output_text.delta", **ids, delta=delta, logprobs=[])]

    def on_reasoning(self, delta: str) -> list[dict[str, Any]]:
        events = self._open_item("reasoning") if not self._open or self._open["type"] != "reasoning" else []
        item = self._open
        assert item is not None
        item["summary"][0]["text"] += delta
        ids = {"item_id": item["id"], "output_index": self.output.index(item), "summary_index": 0}
        return [*events, self._event("response.reasoning_summary_text.delta", **ids, delta=delta)]

    def on_tool_call(self, call: ToolCall) -> list[dict[str, Any]]:
        """A call item, streamed as OpenAI does: added (no arguments), the arguments (a custom tool: its input) as
        one delta and done, then done. A call of a tool in a namespace carries `namespace` and the tool's own name."""
        events = self._close_item()
        self._calls.append(call)
        index = len(self.output)
        spec = self._specs.get(call.name)
        named = {"name": spec.own_name, "namespace": spec.namespace} if spec and spec.namespace else {"name": call.name}
        if spec is not None and spec.kind == "tool_search":
            return [*events, *self._tool_search(call, index)]
        if spec is not None and spec.custom:
            text = custom_input(call.arguments)
            item = {"id": new_id("ctc"), "type": "custom_tool_call", "call_id": call.call_id, "input": "", **named}
            kind, field, value = "response.custom_tool_call_input", "input", text
        else:
            item = {
                "id": new_id("fc"), "type": "function_call", "status": "in_progress", "arguments": "",
                "call_id": call.call_id, **named,
            }  # fmt: skip
            kind, field, value = "response.function_call_arguments", "arguments", call.arguments
        ids = {"item_id": item["id"], "output_index": index}
        events.append(self._event("response.output_item.added", output_index=index, item=dict(item)))
        events.append(self._event(f"{kind}.delta", **ids, delta=value))
        events.append(self._event(f"{kind}.done", **ids, **{field: value}))
        item[field] = value
        if "status" in item:
            item["status"] = "completed"
        self.output.append(item)
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    def _tool_search(self, call: ToolCall, index: int) -> list[dict[str, Any]]:
        """A client-run tool search's call: a `tool_search_call` item, added and done."""
        item = {
            "id": new_id("tsc"), "type": "tool_search_call", "call_id": call.call_id, "execution": "client",
            "arguments": tool_search_arguments(call.arguments), "status": "in_progress",
        }  # fmt: skip
        added = self._event("response.output_item.added", output_index=index, item=dict(item))
        item["status"] = "completed"
        self.output.append(item)
        return [added, self._event("response.output_item.done", output_index=index, item=item)]

    def on_web_search(self, search: WebSearch) -> list[dict[str, Any]]:
        """A web search the model ran, as a `web_search_call` item with its in_progress, searching and completed
        events (it is over when Codex reports it)."""
        events = self._close_item()
        index = len(self.output)
        item = {"id": new_id("ws"), "type": "web_search_call", "status": "in_progress", "action": search.action}
        ids = {"item_id": item["id"], "output_index": index}
        events.append(self._event("response.output_item.added", output_index=index, item=dict(item)))
        for step in ("in_progress", "searching", "completed"):
            events.append(self._event(f"response.web_search_call.{step}", **ids))
        item["status"] = "completed"
        self.output.append(item)
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    def complete(self, usage: Usage) -> list[dict[str, Any]]:
        events = self._close_item()
        if not any(
            item["type"] in ("message", "function_call", "custom_tool_call", "tool_search_call") for item in self.output
        ):  # an empty answer is still a message
            events += self._open_item("message") + self._close_item()
        self.status, self.usage = "completed", usage
        return [*events, self._event("response.completed", response=self.response())]

    def fail(self, failure: Failed | ApiError) -> list[dict[str, Any]]:
        """End as failed: a failed turn, or an answer that broke the requested format."""
        error = (
            failure_error(failure.kind, failure.message, failure.retry_at) if isinstance(failure, Failed) else failure
        )
        events = self._close_item()
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        self.status, self.failure = "failed", error
        self.error = {"code": code, "message": error.message}
        return [*events, self._event("response.failed", response=self.response())]

    def end(self, status: str, message: str, code: str = "server_error") -> list[dict[str, Any]]:
        """End a background response from outside the turn: `cancelled` (no error), or `failed` with `message`."""
        events = self._close_item()
        self.status = status
        if status == "failed":
            self.error = {"code": code, "message": message}
        return [*events, self._event(f"response.{status}", response=self.response())]
