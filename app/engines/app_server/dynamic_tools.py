"""Client functions on the app-server, as Codex's dynamic tools.

The client's functions become the thread's `dynamicTools`, under names Codex can take. The thread's raw response
events (`experimentalRawEvents`) show each function call as the model wrote it, and when the model's response is
complete. A response that calls client functions ends the turn there: its calls go back to the HTTP client, the
turn is interrupted, and only then are the pending `item/tool/call` requests answered (by RpcSession.unsubscribe),
so Codex never sends the model a made-up result. The next request brings the outputs, replayed as
function_call / function_call_output items on a new thread: no turn waits between HTTP requests.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from app.turn import ToolCall, ToolOutput, ToolSpec, Turn, Usage

TOOL_CALL_REQUEST = "item/tool/call"
RAW_ITEM = "rawResponseItem/completed"
RAW_RESPONSE = "rawResponse/completed"
_CODEX_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")  # what thread/start accepts
# Codex 0.169's own tools (in some mode or feature): a dynamic tool of the same name would be hidden by Codex's.
CODEX_TOOLS = frozenset(
    {
        "exec_command", "write_stdin", "shell", "shell_command", "local_shell", "apply_patch", "update_plan",
        "request_user_input", "view_image", "web_search", "image_generation", "spawn_agent", "send_input", "wait",
        "wait_agent", "close_agent", "resume_agent", "get_goal", "create_goal", "update_goal", "js_repl",
        "js_repl_reset", "list_mcp_resources", "list_mcp_resource_templates", "read_mcp_resource", "tool_search",
        "tool_suggest", "sleep", "current_time", "multi_agent_v1",
    }
)  # fmt: skip


def wire_name(name: str, digits: int = 8) -> str:
    """The name Codex gets for a client function: the client's own when Codex can take it, else a readable
    stand-in ending in a hash of the original (`digits` long). The same name always maps the same way, so a later
    request (on any instance) replays earlier calls under the names the model saw."""
    if digits == 8 and _CODEX_NAME.match(name) and name not in CODEX_TOOLS:
        return name
    base = re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_")[:48] or "function"
    return f"{base}_{hashlib.sha256(name.encode()).hexdigest()[:digits]}"


class ToolNames:
    """Both directions of the name mapping for one turn's functions."""

    def __init__(self, tools: tuple[ToolSpec, ...]) -> None:
        self._wire: dict[str, str] = {}
        # Two names can map to one (a client name may look like another's stand-in): names Codex takes as they
        # are keep them, and a stand-in already taken gets a longer hash. Same tools, same mapping.
        for name in sorted({tool.name for tool in tools}, key=lambda n: (wire_name(n) != n, n)):
            wire, digits = wire_name(name), 8
            while wire in self._wire.values():
                digits += 8
                wire = wire_name(name, digits) if digits <= 64 else f"{wire_name(name, 64)}_{digits}"
            self._wire[name] = wire
        self._client = {wire: name for name, wire in self._wire.items()}

    def wire(self, name: str) -> str:
        return self._wire.get(name) or wire_name(name)

    def client(self, wire: str) -> str | None:
        """The client's name of a function the model called; None for a function that is not the client's."""
        return self._client.get(wire)


def tool_thread_params(turn: Turn, names: ToolNames) -> dict[str, Any]:
    """thread/start fields for a turn with client functions: the tools, and the raw events that show the calls."""
    if not turn.tools:
        return {}
    tools = [
        {"type": "function", "name": names.wire(t.name), "description": t.description, "inputSchema": t.parameters}
        for t in turn.tools
    ]
    return {"dynamicTools": tools, "experimentalRawEvents": True}


def history_item(item: ToolCall | ToolOutput, names: ToolNames) -> dict[str, Any]:
    """An earlier call or its output as the Responses item thread/inject_items takes."""
    if isinstance(item, ToolCall):
        return {
            "type": "function_call",
            "call_id": item.call_id,
            "name": names.wire(item.name),
            "arguments": item.arguments,
        }
    return {"type": "function_call_output", "call_id": item.call_id, "output": item.output}


def token_usage(raw: dict[str, Any] | None) -> Usage:
    """Usage from the app-server's token counts (camelCase, any of them missing)."""
    raw = raw or {}
    return Usage(
        input_tokens=int(raw.get("inputTokens") or 0),
        cached_input_tokens=int(raw.get("cachedInputTokens") or 0),
        output_tokens=int(raw.get("outputTokens") or 0),
        reasoning_output_tokens=int(raw.get("reasoningOutputTokens") or 0),
    )


class ClientCalls:
    """Watches one turn for calls of the client's functions; says when the model's response making them is over.

    Calls come from the raw `function_call` items of this turn (in output order, arguments as the model wrote
    them); an `item/tool/call` request with no raw item counts too. Such a call comes from inside one of Codex's
    own tools (a code-mode model, gpt-5.6 and gpt-6, reaches the client's functions only through its `exec`
    JavaScript tool): when the model's response is already complete, it is handed back at once.
    """

    def __init__(self, names: ToolNames, turn_id: str | None) -> None:
        self.names = names
        self.turn_id = turn_id
        self.calls: list[ToolCall] = []
        self.usage = Usage()  # summed over the model's responses in this turn
        self.streaming = False  # a model response has sent items and is not complete yet

    def feed(self, message: dict[str, Any]) -> list[ToolCall] | None:
        """The client calls of the model's response, once that response is complete; None until then."""
        method, params = message.get("method"), message.get("params") or {}
        if params.get("turnId") != self.turn_id:  # e.g. injected history echoed before the turn
            return None
        if method == RAW_ITEM:
            self.streaming = True
            item = params.get("item") or {}
            name = self.names.client(str(item.get("name")))
            if item.get("type") == "function_call" and name is not None:
                self._add(ToolCall(str(item.get("call_id") or ""), name, str(item.get("arguments") or "")))
        elif method == TOOL_CALL_REQUEST and "id" in message:
            name = self.names.client(str(params.get("tool")))
            if name is not None:
                self._add(ToolCall(str(params.get("callId") or ""), name, json.dumps(params.get("arguments"))))
                if not self.streaming:  # called from inside a tool Codex runs after the model's response
                    return self.calls
        elif method == RAW_RESPONSE:
            self.streaming = False
            response = token_usage(params.get("usage"))
            self.usage = Usage(
                self.usage.input_tokens + response.input_tokens,
                self.usage.cached_input_tokens + response.cached_input_tokens,
                self.usage.output_tokens + response.output_tokens,
                self.usage.reasoning_output_tokens + response.reasoning_output_tokens,
            )
            if self.calls:
                return self.calls
        return None

    def _add(self, call: ToolCall) -> None:
        if all(known.call_id != call.call_id for known in self.calls):
            self.calls.append(call)
