"""The Responses API's tool shapes beyond plain functions (the ones coding agents such as the Codex CLI send), as
the function definitions the gateway offers its Codex (app/api/tools.py reads them like any function).

- `custom` (freeform input, optional `format` grammar): a function with one string parameter `input`; a call comes
  back as a `custom_tool_call` item. A grammar is shown to the model but cannot be enforced: named as ignored.
- `namespace`: each of its functions and custom tools is offered under the qualified name `namespace.name`; a call
  comes back with `namespace` and the tool's own name.
- `additional_tools` input items (and the tools a `tool_search_output` item loaded): offered as if in `tools`
  (a later definition of the same name replaces an earlier one, as a conversation adds tools turn by turn).
- `tool_search` run by the client (`execution: "client"`, as the Codex CLI sends it): offered as a function (its
  `parameters`); a call comes back as a `tool_search_call` item, which the client runs, and the tools of its
  `tool_search_output` are offered from then on. Run by the server: there is no server-side search here, so it is
  ignored and named; tools with `defer_loading` are offered at once, named as adjusted.
- `web_search`: kept for app/api/web_search.py, which decides whether the turn searches the web.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.errors import invalid

CUSTOM_INPUT = "input"  # the one parameter of a custom tool's function
MAX_GRAMMAR_SHOWN = 16 * 1024  # characters of a grammar shown to the model; a longer one is cut
WEB_SEARCH_TYPES = ("web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11")
TOOL_ITEMS = ("additional_tools", "tool_search_output")  # input items whose tools are offered
TOOL_SEARCH = "tool_search"
SEARCH_PARAMETERS = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}


@dataclass(frozen=True)
class Entry:
    """One tool the model is offered, function-shaped: `raw` has name (qualified), description, parameters, strict."""

    raw: dict[str, Any]
    where: str
    namespace: str | None = None
    kind: str = "function"  # function | custom | tool_search


@dataclass
class Offered:
    entries: list[Entry] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    adjusted: list[str] = field(default_factory=list)
    web_search: dict[str, Any] | None = None  # the request's web_search tool, if any
    web_search_param: str = ""

    def note(self, names: list[str], name: str) -> None:
        if name not in names:
            names.append(name)


def qualified(name: str, namespace: str | None) -> str:
    """The gateway's one name for a tool: `namespace.name` inside a namespace (how Codex's prompts name them)."""
    return f"{namespace}.{name}" if namespace else name


def custom_input(arguments: str) -> str:
    """A custom tool's input from the arguments its function was called with (as written when they are not
    the expected object)."""
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    given = value.get(CUSTOM_INPUT) if isinstance(value, dict) else None
    if isinstance(given, str):
        return given
    return arguments


def custom_arguments(text: str) -> str:
    """A custom tool's input as the arguments of its function (for a call replayed from history)."""
    return json.dumps({CUSTOM_INPUT: text}, ensure_ascii=False)


def _name(raw: dict[str, Any], where: str) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(
            f"Missing required parameter: '{where}.name'.", param=f"{where}.name", code="missing_required_parameter"
        )
    return name


def _custom(raw: dict[str, Any], where: str, namespace: str | None, offered: Offered) -> Entry:
    """A custom tool as a function of one string: its description says what the input is."""
    name = _name(raw, where)
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise invalid(f"Invalid type for '{where}.description': expected a string.", param=f"{where}.description")
    fmt = raw.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    about = "The tool's whole input, as free text (not JSON)."
    if fmt is not None and kind not in ("text", "grammar"):
        raise invalid(
            f"Invalid value for '{where}.format': expected {{'type': 'text'}} or a grammar.",
            param=f"{where}.format",
            code="invalid_value",
        )
    if kind == "grammar" and isinstance(fmt, dict):
        syntax, definition = fmt.get("syntax"), fmt.get("definition")
        if syntax not in ("lark", "regex") or not isinstance(definition, str):
            raise invalid(
                f"Invalid value for '{where}.format': a grammar has syntax 'lark' or 'regex' and a definition.",
                param=f"{where}.format",
                code="invalid_value",
            )
        about += f" It must match this {syntax} grammar:\n{definition[:MAX_GRAMMAR_SHOWN]}"
        offered.note(offered.ignored, f"tools.{qualified(name, namespace)}.format")
    parameters = {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": about}},
        "required": [CUSTOM_INPUT],
        "additionalProperties": False,
    }
    function = {
        "name": qualified(name, namespace),
        "description": f"{description}\n\n(Here the freeform input travels as the one string argument "
        f"`{CUSTOM_INPUT}`: put the whole input there, exactly as it would be written without JSON.)",
        "parameters": parameters,
        "strict": True,  # the call must carry a string, which the gateway turns back into the input
    }
    return Entry(function, where, namespace, "custom")


def _tool_search(raw: dict[str, Any], where: str) -> Entry:
    """A client-run tool search as the function `tool_search` (its parameters, or a query string)."""
    description = raw.get("description") or "Search for more tools to load by what they do."
    parameters = raw.get("parameters") if raw.get("parameters") is not None else SEARCH_PARAMETERS
    function = {"name": TOOL_SEARCH, "description": description, "parameters": parameters, "strict": False}
    return Entry(function, where, None, "tool_search")


def tool_search_arguments(arguments: str) -> dict[str, Any]:
    """A tool search call's `arguments` object (the model's text kept under `query` when it is not one)."""
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {"query": arguments}
    return value if isinstance(value, dict) else {"query": arguments}


def loaded_tools(tools: Any) -> str:
    """What a tool search's output tells the model it sees: the tools it loaded (which are offered from then on)."""
    names = [str(tool.get("name")) for tool in tools if isinstance(tool, dict)] if isinstance(tools, list) else []
    return f"Loaded tools: {', '.join(names)}." if names else "No tools found."


def _function(raw: dict[str, Any], where: str, namespace: str | None) -> Entry:
    name = _name(raw, where)
    return Entry({**raw, "name": qualified(name, namespace)}, where, namespace)


def _unsupported(kind: Any, where: str) -> Exception:
    if not isinstance(kind, str):
        return invalid(
            f"Missing required parameter: '{where}.type'.", param=f"{where}.type", code="missing_required_parameter"
        )
    message = (
        f"Tools of type '{kind}' are not supported by this gateway: it offers the model 'function', 'custom' and "
        "'namespace' tools (and Codex's own web search where the operator allows it)."
    )
    return invalid(message, param=f"{where}.type", code="unsupported_tool_type")


def _read(raw: Any, where: str, offered: Offered, namespace: str | None = None) -> list[Entry]:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(raw, dict):
        raise invalid(f"Invalid value for '{where}': expected an object.", param=where, code="invalid_value")
    if raw.get("defer_loading") is True:
        offered.note(offered.adjusted, "tools.defer_loading=true->false")
    if kind == "function":
        return [_function(raw, where, namespace)]
    if kind == "custom":
        return [_custom(raw, where, namespace, offered)]
    if namespace is None and kind == "namespace":
        name = _name(raw, where)
        tools = raw.get("tools")
        if not isinstance(tools, list):
            raise invalid(f"Invalid type for '{where}.tools': expected an array.", param=f"{where}.tools")
        inner = (_read(tool, f"{where}.tools[{index}]", offered, name) for index, tool in enumerate(tools))
        return [entry for entries in inner for entry in entries]
    if namespace is None and kind == "tool_search":
        if raw.get("execution") != "client":
            offered.note(offered.ignored, "tools.tool_search")
            return []
        return [_tool_search(raw, where)]
    if namespace is None and kind in WEB_SEARCH_TYPES:
        offered.web_search, offered.web_search_param = raw, where
        return []
    raise _unsupported(kind, where)


def offered_tools(tools: Any, items: Any) -> Offered:
    """Every tool of the request: `tools`, then the tools of `additional_tools` / `tool_search_output` input items."""
    offered = Offered()
    if tools is not None and not isinstance(tools, list):
        raise invalid("Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    for index, raw in enumerate(tools or []):
        offered.entries += _read(raw, f"tools[{index}]", offered)
    added: dict[str, Entry] = {}
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or item.get("type") not in TOOL_ITEMS:
            continue
        where = f"input[{index}].tools"
        if not isinstance(item.get("tools"), list):
            raise invalid(f"Invalid type for '{where}': expected an array.", param=where, code="invalid_type")
        for number, raw in enumerate(item["tools"]):
            for entry in _read(raw, f"{where}[{number}]", offered):
                added.pop(entry.raw["name"], None)
                added[entry.raw["name"]] = entry
    given = {entry.raw["name"] for entry in offered.entries}
    offered.entries += [entry for name, entry in added.items() if name not in given]
    return offered
