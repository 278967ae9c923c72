"""The Responses tool shapes coding agents send (custom, namespace, additional_tools, tool_search, web_search), pure
logic: how they are offered, how calls come back in their own shapes, and how their history items are read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.api.response_events import ResponseBuilder
from app.api.response_input import to_messages
from app.api.tool_shapes import custom_arguments, custom_input
from app.api.tools import responses_tools
from app.api.web_search import web_search_mode
from app.config import Settings
from app.engines.app_server.dynamic_tools import ClientCalls, ToolNames, wire_name
from app.engines.web_search import web_search_event
from app.errors import ApiError
from app.turn import RunPolicy, ToolCall, ToolOutput
from tests.unit.test_tools_logic import SCHEMA, raw_item

GRAMMAR = {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" LF'}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": GRAMMAR}
SPAWN = {"type": "function", "name": "spawn_agent", "parameters": SCHEMA, "strict": False}
NAMESPACE = {"type": "namespace", "name": "multi_agent_v1", "description": "Agents.", "tools": [SPAWN, PATCH_TOOL]}


def test_a_custom_tool_is_a_function_of_one_string_and_its_grammar_is_shown_and_named() -> None:
    request = responses_tools({"tools": [PATCH_TOOL, {"type": "custom", "name": "note"}]})
    patch, note = request.offered
    assert note.custom and "grammar" not in json.dumps(note.parameters)
    assert patch.custom and patch.name == "apply_patch" and patch.strict
    assert patch.parameters["required"] == ["input"] and patch.parameters["properties"]["input"]["type"] == "string"
    assert "Begin Patch" in json.dumps(patch.parameters) and "lark" in json.dumps(patch.parameters)
    assert request.ignored == ("tools.apply_patch.format",)  # the plain-text one has nothing to name
    with pytest.raises(ApiError) as caught:
        responses_tools({"tools": [{"type": "custom", "name": "x", "format": {"type": "grammar", "syntax": "ebnf"}}]})
    assert caught.value.param == "tools[0].format"


def test_namespace_tools_are_offered_by_qualified_names() -> None:
    request = responses_tools({"tools": [NAMESPACE, {"type": "function", "name": "get_goal"}]})
    names = [(spec.name, spec.namespace, spec.own_name, spec.custom) for spec in request.offered]
    assert names == [
        ("multi_agent_v1.spawn_agent", "multi_agent_v1", "spawn_agent", False),
        ("multi_agent_v1.apply_patch", "multi_agent_v1", "apply_patch", True),
        ("get_goal", None, "get_goal", False),
    ]
    assert ToolNames(request.offered).client(wire_name("multi_agent_v1.spawn_agent")) == "multi_agent_v1.spawn_agent"


def test_additional_tools_items_add_tools_and_a_later_definition_wins() -> None:
    early = {"type": "additional_tools", "role": "developer", "tools": [{"type": "function", "name": "a"}]}
    later = {
        "type": "additional_tools",
        "role": "developer",
        "tools": [{"type": "function", "name": "a", "description": "new"}, NAMESPACE],
    }
    request = responses_tools({}, [early, {"role": "user", "content": "hi"}, later])
    assert [spec.name for spec in request.offered] == ["a", "multi_agent_v1.spawn_agent", "multi_agent_v1.apply_patch"]
    assert request.offered[0].description == "new"
    given = responses_tools({"tools": [{"type": "function", "name": "a", "description": "top"}]}, [later])
    assert [spec.description for spec in given.offered if spec.name == "a"] == ["top"]


def test_a_client_tool_search_is_offered_a_server_one_ignored_and_web_search_kept() -> None:
    deferred = {"type": "function", "name": "lookup", "defer_loading": True}
    search = {"type": "tool_search", "execution": "client", "parameters": {"type": "object"}}
    web = {"type": "web_search", "external_web_access": False}
    request = responses_tools({"tools": [deferred, search, web]})
    assert [(spec.name, spec.kind) for spec in request.offered] == [
        ("lookup", "function"),
        ("tool_search", "tool_search"),
    ]
    assert request.ignored == () and request.adjusted == ("tools.defer_loading=true->false",)
    assert request.web_search == web
    server = responses_tools({"tools": [deferred, {"type": "tool_search"}]})
    assert [spec.name for spec in server.offered] == ["lookup"] and server.ignored == ("tools.tool_search",)
    with pytest.raises(ApiError) as caught:
        responses_tools({"tools": [{"type": "file_search"}]})
    assert caught.value.param == "tools[0].type"


def test_custom_tool_choice_and_allowed_tools_name_custom_tools() -> None:
    required = responses_tools({"tools": [PATCH_TOOL], "tool_choice": {"type": "custom", "name": "apply_patch"}})
    assert required.choice.mode == "required" and required.choice.name == "apply_patch"
    allowed = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "custom", "name": "apply_patch"}]}
    assert [spec.name for spec in responses_tools({"tools": [PATCH_TOOL, SPAWN], "tool_choice": allowed}).offered] == [
        "apply_patch"
    ]


def test_custom_input_round_trips_through_function_arguments() -> None:
    text = "*** Begin Patch\n*** End Patch\n"
    assert custom_input(custom_arguments(text)) == text
    assert custom_input("not json") == "not json" and custom_input('{"other": 1}') == '{"other": 1}'


def builder_for(tools: dict[str, Any]) -> ResponseBuilder:
    return ResponseBuilder({}, responses_tools(tools).tools)


def test_a_custom_call_streams_as_a_custom_tool_call_item() -> None:
    builder = builder_for({"tools": [NAMESPACE]})
    events = builder.on_tool_call(ToolCall("c1", "multi_agent_v1.apply_patch", custom_arguments("PATCH")))
    kinds = [event["type"] for event in events]
    assert kinds == [
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
    ]
    item = events[-1]["item"]
    assert {k: item[k] for k in ("type", "call_id", "name", "namespace", "input")} == {
        "type": "custom_tool_call",
        "call_id": "c1",
        "name": "apply_patch",
        "namespace": "multi_agent_v1",
        "input": "PATCH",
    }
    assert events[0]["item"]["input"] == "" and events[2]["input"] == "PATCH"
    function = builder.on_tool_call(ToolCall("c2", "multi_agent_v1.spawn_agent", '{"city": "x"}'))[-1]["item"]
    assert (function["type"], function["name"], function["namespace"]) == (
        "function_call",
        "spawn_agent",
        "multi_agent_v1",
    )
    assert [call.name for call in builder.calls()] == ["multi_agent_v1.apply_patch", "multi_agent_v1.spawn_agent"]
    plain = builder_for({"tools": [SPAWN]}).on_tool_call(ToolCall("c3", "spawn_agent", "{}"))[-1]["item"]
    assert "namespace" not in plain and plain["name"] == "spawn_agent"


def test_a_client_tool_search_call_is_a_tool_search_call_item() -> None:
    builder = builder_for({"tools": [{"type": "tool_search", "execution": "client"}]})
    events = builder.on_tool_call(ToolCall("s1", "tool_search", '{"query": "weather"}'))
    assert [event["type"] for event in events] == ["response.output_item.added", "response.output_item.done"]
    item = events[-1]["item"]
    assert {k: item[k] for k in ("type", "call_id", "execution", "arguments", "status")} == {
        "type": "tool_search_call",
        "call_id": "s1",
        "execution": "client",
        "arguments": {"query": "weather"},
        "status": "completed",
    }
    assert builder.calls() == [ToolCall("s1", "tool_search", '{"query": "weather"}')]


def test_history_items_codex_replays_are_read() -> None:
    items = [
        {"type": "additional_tools", "role": "developer", "tools": [NAMESPACE]},
        {"role": "user", "content": "go"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
        {
            "type": "custom_tool_call",
            "call_id": "c1",
            "name": "apply_patch",
            "namespace": "multi_agent_v1",
            "input": "P",
        },
        {"type": "custom_tool_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "Done"}]},
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "spawn_agent",
            "namespace": "multi_agent_v1",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c2", "output": "ok"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
        {"type": "tool_search_call", "call_id": "t1", "execution": "client", "arguments": {"query": "x"}},
        {"type": "tool_search_output", "call_id": "t1", "execution": "client", "tools": [SPAWN]},
        {"type": "tool_search_call", "id": "ts_2", "execution": "server", "arguments": {"query": "y"}},
        {"type": "compaction", "encrypted_content": "opaque"},
    ]
    ignored: list[str] = []
    drafts, listed = to_messages(items, ignored)
    assert drafts[1:] == [
        ToolCall("c1", "multi_agent_v1.apply_patch", custom_arguments("P")),
        ToolOutput("c1", "Done"),
        ToolCall("c2", "multi_agent_v1.spawn_agent", "{}"),
        ToolOutput("c2", "ok"),
        ToolCall("t1", "tool_search", '{"query": "x"}'),
        ToolOutput("t1", "Loaded tools: spawn_agent."),
    ]
    assert "spawn_agent" in [spec.name for spec in responses_tools({}, items).offered]  # the search loaded it
    assert [item["type"] for item in listed] == [
        "additional_tools", "message", "reasoning", "custom_tool_call", "custom_tool_call_output", "function_call",
        "function_call_output", "web_search_call", "tool_search_call", "tool_search_output", "tool_search_call",
        "compaction",
    ]  # fmt: skip
    assert listed[5]["namespace"] == "multi_agent_v1" and listed[5]["name"] == "spawn_agent"
    assert all(item.get("id") for item in listed) and ignored == ["input.compaction"]


def test_a_call_from_inside_codex_own_tool_comes_at_once_when_the_response_is_complete() -> None:
    calls = ClientCalls(ToolNames(responses_tools({"tools": [NAMESPACE]}).tools), "turn1")
    ask = {"turnId": "turn1", "callId": "n1", "tool": wire_name("multi_agent_v1.spawn_agent"), "arguments": {"a": 1}}
    own = raw_item("turn1", {"type": "custom_tool_call", "name": "exec", "call_id": "x", "input": "code"})
    assert calls.feed(own) is None  # the model's response is still streaming
    assert calls.feed({"id": 3, "method": "item/tool/call", "params": ask}) is None
    done = {"method": "rawResponse/completed", "params": {"turnId": "turn1", "usage": {}}}
    assert [call.call_id for call in calls.feed(done) or []] == ["n1"]
    later = ClientCalls(ToolNames(responses_tools({"tools": [NAMESPACE]}).tools), "turn1")
    assert later.feed(own) is None and later.feed(done) is None  # exec runs after the response
    made = later.feed({"id": 4, "method": "item/tool/call", "params": ask})
    assert made == [ToolCall("n1", "multi_agent_v1.spawn_agent", '{"a": 1}')]


@pytest.mark.parametrize(
    ("setting", "network", "tool", "mode", "ignored", "adjusted"),
    [
        ("off", True, {"type": "web_search"}, None, ["tools.web_search"], []),
        ("cached", True, {"type": "web_search"}, "cached", [], ["tools.web_search.external_web_access=true->false"]),
        ("live", True, {"type": "web_search"}, "live", [], []),
        ("live", None, {"type": "web_search"}, "cached", [], ["tools.web_search.external_web_access=true->false"]),
        ("live", True, {"type": "web_search", "external_web_access": False}, "cached", [], []),
        ("cached", None, {"type": "web_search", "filters": {"allowed_domains": ["a.b"]}}, "cached",
         ["tools.web_search.filters"], ["tools.web_search.external_web_access=true->false"]),
    ],
)  # fmt: skip
def test_web_search_never_gets_more_than_the_setting_and_the_turns_network(
    setting: str, network: bool | None, tool: dict[str, Any], mode: str | None, ignored: list, adjusted: list
) -> None:
    settings = Settings(_env_file=None, codex_client_web_search=setting)  # type: ignore[call-arg]
    policy = RunPolicy("workspace-write", "low", False, Path("/w"), network_access=network)
    got_ignored: list[str] = []
    got_adjusted: list[str] = []
    assert web_search_mode(tool, settings, policy, got_ignored, got_adjusted) == mode
    assert (got_ignored, got_adjusted) == (ignored, adjusted)
    assert web_search_mode(None, settings, policy, got_ignored, got_adjusted) is None


def test_codex_web_search_items_become_responses_actions() -> None:
    assert web_search_event({"type": "webSearch", "query": "q", "action": None}).action == {
        "type": "search",
        "query": "q",
    }
    opened = web_search_event({"action": {"type": "openPage", "url": "https://a.b"}}).action
    assert opened == {"type": "open_page", "url": "https://a.b"}
    found = web_search_event({"action": {"type": "find_in_page", "url": "u", "pattern": "p"}}).action
    assert found == {"type": "find_in_page", "url": "u", "pattern": "p"}
    many = web_search_event({"action": {"type": "search", "query": "a", "queries": ["a", "b"]}}).action
    assert many == {"type": "search", "query": "a", "queries": ["a", "b"]}
