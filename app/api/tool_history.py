"""Function calls and their outputs in a request's history: chat's `tool_calls` / `role: "tool"` messages (and
the older `function_call` / `role: "function"`), Responses' `function_call` / `function_call_output` items."""

from __future__ import annotations

import json
from typing import Any

from app.api.tool_shapes import TOOL_SEARCH, custom_arguments, loaded_tools, qualified
from app.errors import invalid
from app.turn import Item, ToolCall, ToolOutput


def _text(value: Any, param: str, part_types: tuple[str, ...]) -> str:
    """A tool output: a string, or text parts (other parts are refused: they would be dropped)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise invalid(f"Invalid type for '{param}': expected a string or an array of text parts.", param=param)
    texts = []
    for index, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in part_types and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            message = f"Only text parts are supported in function outputs (got {kind!r} at '{param}[{index}]')."
            raise invalid(message, param=f"{param}[{index}]", code="unsupported_content")
    return "".join(texts)


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    return value


def _arguments(value: Any, param: str) -> str:
    if isinstance(value, dict):  # some clients send the object itself
        return json.dumps(value)
    if not isinstance(value, str):
        raise invalid(f"Invalid type for '{param}': expected a JSON string.", param=param, code="invalid_type")
    return value


def chat_calls(message: dict[str, Any], index: int) -> list[ToolCall]:
    """The calls of an assistant message: its `tool_calls`, or its older single `function_call` (which has no id:
    it gets one from its place in the conversation)."""
    where = f"messages[{index}]"
    calls = []
    raw = message.get("tool_calls")
    if raw is not None and not isinstance(raw, list):
        raise invalid(f"Invalid type for '{where}.tool_calls': expected an array.", param=f"{where}.tool_calls")
    for number, entry in enumerate(raw or []):
        at = f"{where}.tool_calls[{number}]"
        if not isinstance(entry, dict) or entry.get("type", "function") != "function":
            kind = entry.get("type") if isinstance(entry, dict) else None
            raise invalid(
                f"Tool calls of type {kind!r} are not supported at '{at}'.", param=at, code="unsupported_tool_type"
            )
        given = entry.get("function")
        function: dict[str, Any] = given if isinstance(given, dict) else {}
        name = _string(function.get("name"), f"{at}.function.name")
        calls.append(
            ToolCall(
                _string(entry.get("id"), f"{at}.id"),
                name,
                _arguments(function.get("arguments", "{}"), f"{at}.function.arguments"),
            )
        )
    legacy = message.get("function_call")
    if legacy:
        at = f"{where}.function_call"
        if not isinstance(legacy, dict):
            raise invalid(f"Invalid type for '{at}': expected an object.", param=at, code="invalid_type")
        name = _string(legacy.get("name"), f"{at}.name")
        calls.append(
            ToolCall(f"call_legacy_{index}", name, _arguments(legacy.get("arguments", "{}"), f"{at}.arguments"))
        )
    return calls


def chat_output(message: dict[str, Any], where: str, items: list[Any]) -> ToolOutput:
    """A `role: "tool"` message (by `tool_call_id`), or an older `role: "function"` one (by name: it answers the
    latest unanswered call of that function)."""
    text = _text(message.get("content") or "", f"{where}.content", ("text",))
    if message.get("role") == "tool":
        return ToolOutput(_string(message.get("tool_call_id"), f"{where}.tool_call_id"), text)
    name = _string(message.get("name"), f"{where}.name")
    answered = {item.call_id for item in items if isinstance(item, ToolOutput)}
    for item in reversed(items):
        if isinstance(item, ToolCall) and item.name == name and item.call_id not in answered:
            return ToolOutput(item.call_id, text)
    message_text = f"'{where}' (role 'function') answers no earlier call of the function {name!r}."
    raise invalid(message_text, param=f"{where}.name", code="invalid_value")


def responses_item(item: dict[str, Any], where: str) -> ToolCall | ToolOutput:
    """A `function_call`, `custom_tool_call` or their `*_output` input item (a call inside a namespace is known by
    its qualified name, as its tool is: app/api/tool_shapes.py)."""
    call_id = _string(item.get("call_id"), f"{where}.call_id")
    kind = item.get("type")
    if kind == "tool_search_call":
        return ToolCall(call_id, TOOL_SEARCH, json.dumps(item.get("arguments") or {}))
    if kind == "tool_search_output":
        return ToolOutput(call_id, loaded_tools(item.get("tools")))
    if kind in ("function_call", "custom_tool_call"):
        namespace = item.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise invalid(f"Invalid type for '{where}.namespace': expected a string.", param=f"{where}.namespace")
        name = qualified(_string(item.get("name"), f"{where}.name"), namespace or None)
        if kind == "custom_tool_call":
            text = item.get("input")
            if not isinstance(text, str):
                raise invalid(f"Invalid type for '{where}.input': expected a string.", param=f"{where}.input")
            return ToolCall(call_id, name, custom_arguments(text))
        return ToolCall(call_id, name, _arguments(item.get("arguments"), f"{where}.arguments"))
    return ToolOutput(call_id, _text(item.get("output"), f"{where}.output", ("input_text", "output_text", "text")))


def listed(item: ToolCall | ToolOutput, item_id: str) -> dict[str, Any]:
    """The item as GET /v1/responses/{id}/input_items lists it."""
    if isinstance(item, ToolCall):
        return {
            "id": item_id,
            "type": "function_call",
            "status": "completed",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    return {
        "id": item_id,
        "type": "function_call_output",
        "status": "completed",
        "call_id": item.call_id,
        "output": item.output,
    }


def check_pairs(items: tuple[Item, ...] | list[Item], chat: bool) -> None:
    """Every output answers an earlier call, and every call has its output (as the OpenAI API requires)."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in items:
        if isinstance(item, ToolCall):
            calls.append(item.call_id)
        elif isinstance(item, ToolOutput):
            if item.call_id not in calls:
                if chat:
                    message = (
                        f"Invalid parameter: a 'tool' message answers tool_call_id {item.call_id!r}, "
                        "which no earlier assistant message called."
                    )
                    raise invalid(message, param="messages", code="invalid_value")
                raise invalid(
                    f"No tool call found for function call output with call_id {item.call_id}.", param="input"
                )
            answered.add(item.call_id)
    missing = [call_id for call_id in calls if call_id not in answered]
    if missing and chat:
        message = (
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(missing)}"
        )
        raise invalid(message, param="messages", code="invalid_value")
    if missing:
        raise invalid(f"No tool output found for function call {missing[0]}.", param="input")
