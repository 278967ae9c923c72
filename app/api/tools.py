"""Function calling, OpenAI side: `tools`, `tool_choice`, `parallel_tool_calls` (and chat's older `functions`,
`function_call`) as neutral ToolSpecs and a ToolChoice, and calls rendered back in each endpoint's shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.api.tool_shapes import offered_tools
from app.errors import invalid
from app.turn import Message, ToolCall, ToolChoice, ToolSpec

NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}
CHOICES = ("none", "auto", "required")
PARAMETERS_CODE = "invalid_function_parameters"


@dataclass(frozen=True)
class ToolRequest:
    """What a request says about functions."""

    tools: tuple[ToolSpec, ...] = ()  # every function it defines
    offered: tuple[ToolSpec, ...] = ()  # what the model gets: none with "none", only the named or allowed ones
    choice: ToolChoice = field(default_factory=ToolChoice)
    parallel: bool = True
    legacy: bool = False  # chat's older `functions`: answers carry `function_call`, one call at most
    choice_body: Any = "auto"  # tool_choice as the request gave it (the Responses object echoes it)
    ignored: tuple[str, ...] = ()  # what of the tools is not honoured (x-codex-ignored-params)
    adjusted: tuple[str, ...] = ()
    web_search: dict[str, Any] | None = None  # a Responses web_search tool (app/api/web_search.py)
    schema_params: tuple[str, ...] = ()  # where each function's parameters are in the request (for errors)

    def schemas(self) -> list[tuple[str, Any, str | None]]:
        """The functions' parameter schemas, for app.schemas: (param, schema, error code)."""
        params = self.schema_params or tuple(f"tools[{index}].parameters" for index in range(len(self.tools)))
        return [(param, spec.parameters, PARAMETERS_CODE) for param, spec in zip(params, self.tools, strict=True)]


def _spec(raw: Any, where: str, strict_default: bool) -> ToolSpec:
    """One function definition: {name, description, parameters, strict}."""
    if not isinstance(raw, dict):
        raise invalid(f"Invalid value for '{where}': expected an object.", param=where, code="invalid_value")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(
            f"Missing required parameter: '{where}.name'.", param=f"{where}.name", code="missing_required_parameter"
        )
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise invalid(f"Invalid type for '{where}.description': expected a string.", param=f"{where}.description")
    parameters = raw.get("parameters")
    if parameters is None:
        parameters = NO_ARGUMENTS
    elif not isinstance(parameters, dict):
        raise invalid(
            f"Invalid type for '{where}.parameters': expected a JSON Schema object.", param=f"{where}.parameters"
        )
    strict = raw.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid(f"Invalid type for '{where}.strict': expected a boolean.", param=f"{where}.strict")
    return ToolSpec(name, description, parameters, strict_default if strict is None else strict)


def _unsupported_tool(kind: Any, where: str) -> Exception:
    if not isinstance(kind, str):
        return invalid(
            f"Missing required parameter: '{where}.type'.", param=f"{where}.type", code="missing_required_parameter"
        )
    message = f"Tools of type '{kind}' are not supported by this gateway: only 'function' tools reach Codex."
    return invalid(message, param=f"{where}.type", code="unsupported_tool_type")


def _specs(raw: Any, param: str, read: Callable[[Any, str], ToolSpec]) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid(f"Invalid type for '{param}': expected an array.", param=param, code="invalid_type")
    specs = tuple(read(entry, f"{param}[{index}]") for index, entry in enumerate(raw))
    names = [spec.name for spec in specs]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise invalid(
                f"Duplicate function name in '{param}': {name!r}.", param=f"{param}[{index}]", code="invalid_value"
            )
    return specs


def _choose(
    specs: tuple[ToolSpec, ...], mode: str, names: list[str] | None, param: str
) -> tuple[ToolChoice, tuple[ToolSpec, ...]]:
    """The choice and the functions offered for a tool_choice mode (and the names it narrows to)."""
    if mode not in CHOICES:
        raise invalid(
            f"Invalid value for '{param}': {mode!r}. Allowed: {', '.join(CHOICES)}, or a function.",
            param=param,
            code="invalid_value",
        )
    if mode != "none" and names is not None:
        known = {spec.name for spec in specs}
        for name in names:
            if name not in known:
                raise invalid(
                    f"Invalid '{param}': no function named {name!r} in tools.", param=param, code="invalid_value"
                )
    if mode == "none" or not specs:
        if mode == "required":
            raise invalid(
                f"'{param}' is 'required' but the request defines no functions.", param=param, code="invalid_value"
            )
        return ToolChoice(), ()
    offered = specs if names is None else tuple(spec for spec in specs if spec.name in names)
    single = offered[0].name if mode == "required" and names is not None and len(offered) == 1 else None
    return ToolChoice("required" if mode == "required" else "auto", single), offered


def _parallel(value: Any) -> bool:
    if value is not None and not isinstance(value, bool):
        raise invalid("Invalid type for 'parallel_tool_calls': expected a boolean.", param="parallel_tool_calls")
    return value is not False


def chat_tools(extra: dict[str, Any]) -> ToolRequest:
    """Chat Completions: `tools` (or `functions`), `tool_choice` (or `function_call`), `parallel_tool_calls`."""

    def read_tool(raw: Any, where: str) -> ToolSpec:
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind != "function":
            raise _unsupported_tool(kind, where)
        return _spec(raw.get("function"), f"{where}.function", strict_default=False)

    tools, functions = extra.get("tools"), extra.get("functions")
    if tools and functions:
        raise invalid("Use either 'tools' or the older 'functions', not both.", param="functions", code="invalid_value")
    legacy = bool(functions) and not tools
    specs = (
        _specs(functions, "functions", lambda raw, where: _spec(raw, where, False))
        if legacy
        else _specs(tools, "tools", read_tool)
    )
    param = "function_call" if legacy else "tool_choice"
    raw_choice = extra.get(param)
    mode, names = "auto", None
    if isinstance(raw_choice, str):
        mode = raw_choice
    elif isinstance(raw_choice, dict):
        kind = "function" if legacy else raw_choice.get("type")
        target = raw_choice if legacy else raw_choice.get("function")
        if kind == "function" and isinstance(target, dict) and isinstance(target.get("name"), str):
            mode, names = "required", [target["name"]]
        elif kind == "allowed_tools" and isinstance(raw_choice.get("allowed_tools"), dict):
            mode, names = _allowed(
                raw_choice["allowed_tools"], f"{param}.allowed_tools", lambda t: (t.get("function") or {}).get("name")
            )
        else:
            raise invalid(
                f"Invalid value for '{param}': expected 'none', 'auto', 'required' or a function.",
                param=param,
                code="invalid_value",
            )
    elif raw_choice is not None:
        raise invalid(f"Invalid type for '{param}'.", param=param, code="invalid_type")
    choice, offered = _choose(specs, mode, names, param)
    where = "functions[{}].parameters" if legacy else "tools[{}].function.parameters"
    return ToolRequest(
        specs,
        offered,
        choice,
        _parallel(extra.get("parallel_tool_calls")),
        legacy,
        raw_choice or "auto",
        schema_params=tuple(where.format(index) for index in range(len(specs))),
    )


def _allowed(spec: dict[str, Any], param: str, name_of: Callable[[dict[str, Any]], Any]) -> tuple[str, list[str]]:
    """An allowed_tools choice: its mode and the function names it allows (other tool types are refused)."""
    mode, tools = spec.get("mode", "auto"), spec.get("tools")
    if not isinstance(tools, list) or not tools:
        raise invalid(f"'{param}.tools' must be a non-empty array.", param=f"{param}.tools", code="invalid_value")
    names = []
    for index, tool in enumerate(tools):
        if (
            not isinstance(tool, dict)
            or tool.get("type") not in ("function", "custom")
            or not isinstance(name_of(tool), str)
        ):
            raise _unsupported_tool(tool.get("type") if isinstance(tool, dict) else None, f"{param}.tools[{index}]")
        names.append(name_of(tool))
    return mode, names


def responses_tools(extra: dict[str, Any], items: Any = None) -> ToolRequest:
    """The Responses API: `tools` (function, custom and namespace tools, and those of `additional_tools` input
    `items`: app/api/tool_shapes.py), `tool_choice`, `parallel_tool_calls`."""
    offered = offered_tools(extra.get("tools"), items)
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for entry in offered.entries:
        spec = _spec(entry.raw, entry.where, strict_default=True)  # the Responses API's default
        if spec.name in seen:
            message = f"Duplicate function name in 'tools': {spec.name!r}."
            raise invalid(message, param=entry.where, code="invalid_value")
        seen.add(spec.name)
        specs.append(replace(spec, namespace=entry.namespace, kind=entry.kind))
    raw_choice = extra.get("tool_choice")
    mode, names = "auto", None
    if isinstance(raw_choice, str):
        mode = raw_choice
    elif isinstance(raw_choice, dict):
        kind = raw_choice.get("type")
        if kind in ("function", "custom") and isinstance(raw_choice.get("name"), str):
            mode, names = "required", [raw_choice["name"]]
        elif kind == "allowed_tools":
            mode, names = _allowed(raw_choice, "tool_choice", lambda t: t.get("name"))
        else:
            raise _unsupported_tool(kind, "tool_choice")
    elif raw_choice is not None:
        raise invalid("Invalid type for 'tool_choice'.", param="tool_choice", code="invalid_type")
    choice, chosen = _choose(tuple(specs), mode, names, "tool_choice")
    return ToolRequest(
        tuple(specs),
        chosen,
        choice,
        _parallel(extra.get("parallel_tool_calls")),
        False,
        raw_choice or "auto",
        tuple(offered.ignored),
        tuple(offered.adjusted),
        offered.web_search,
        tuple(f"{entry.where}.parameters" for entry in offered.entries),
    )


def must_call_instruction(request: ToolRequest) -> Message | None:
    """Codex offers functions with tool_choice "auto" only: a required call is asked for in words (and checked)."""
    if request.choice.mode != "required" or not request.offered:
        return None
    if request.choice.name is not None:
        return Message("developer", f"Answer by calling the function `{request.choice.name}` now.")
    names = ", ".join(f"`{spec.name}`" for spec in request.offered)
    return Message("developer", f"Answer by calling one or more of these functions now: {names}.")


def chat_tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def chat_call_deltas(index: int, call: ToolCall, legacy: bool) -> list[dict[str, Any]]:
    """A call as streamed chat deltas: id, type and name first (arguments ""), then the arguments."""
    if legacy:
        return [
            {"function_call": {"name": call.name, "arguments": ""}},
            {"function_call": {"arguments": call.arguments}},
        ]
    head = {"index": index, "id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}
    return [{"tool_calls": [head]}, {"tool_calls": [{"index": index, "function": {"arguments": call.arguments}}]}]


def responses_tool_object(spec: ToolSpec) -> dict[str, Any]:
    """A function tool as the Responses object lists it."""
    return {
        "type": "function",
        "name": spec.name,
        "description": spec.description or None,
        "parameters": spec.parameters,
        "strict": spec.strict,
    }
