"""Function calling, pure logic: request parsing, history, name mapping, the call watcher, the contract check."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.api.tool_contract import broken_contract
from app.api.tool_history import chat_calls, check_pairs
from app.api.tools import chat_tools, responses_tools
from app.engines.app_server.dynamic_tools import CODEX_TOOLS, ClientCalls, ToolNames, wire_name
from app.engines.app_server.refusals import refuse
from app.engines.app_server.rpc import RpcSession
from app.engines.app_server.translate import split_conversation, thread_params, turn_params
from app.errors import ApiError
from app.schemas import SchemaChecker, SchemaLimits
from app.turn import (
    Message,
    RunPolicy,
    ToolCall,
    ToolChoice,
    ToolOutput,
    ToolSpec,
    Turn,
    decode_history,
    encode_history,
)
from tests.unit.test_rpc_session import FakePeer

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
TIME = {"type": "function", "function": {"name": "get_time"}}
POLICY = RunPolicy("read-only", "high", False, Path("/w"))


def refused(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value


def test_chat_tools_and_choices() -> None:
    request = chat_tools({"tools": [WEATHER, TIME]})
    assert [s.name for s in request.offered] == ["get_weather", "get_time"] and request.choice == ToolChoice()
    assert request.offered[1].parameters == {"type": "object", "properties": {}} and not request.offered[0].strict
    assert chat_tools({"tools": [WEATHER], "tool_choice": "none"}).offered == ()
    named = chat_tools(
        {"tools": [WEATHER, TIME], "tool_choice": {"type": "function", "function": {"name": "get_time"}}}
    )
    assert [s.name for s in named.offered] == ["get_time"] and named.choice == ToolChoice("required", "get_time")
    assert chat_tools({"tools": [WEATHER], "parallel_tool_calls": False}).parallel is False
    legacy = chat_tools({"functions": [WEATHER["function"]], "function_call": {"name": "get_weather"}})
    assert legacy.legacy and legacy.choice == ToolChoice("required", "get_weather")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        ({"tools": [WEATHER, WEATHER]}, "tools[1]"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": 5}}]},
         "tools[0].function.parameters"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "always"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "functions": [WEATHER["function"]]}, "functions"),
        ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)  # fmt: skip
def test_chat_tool_mistakes_are_named(extra: dict[str, Any], param: str) -> None:
    assert refused(chat_tools, extra).param == param


def test_responses_tools_default_to_strict_and_refuse_hosted_tools() -> None:
    request = responses_tools({"tools": [{"type": "function", "name": "f", "parameters": SCHEMA}]})
    assert request.offered[0].strict
    assert refused(responses_tools, {"tools": [{"type": "file_search"}]}).param == "tools[0].type"
    assert (
        refused(responses_tools, {"tools": [], "tool_choice": {"type": "web_search_preview"}}).param
        == "tool_choice.type"
    )


def test_history_pairs_are_checked() -> None:
    call, output = ToolCall("c1", "f", "{}"), ToolOutput("c1", "ok")
    check_pairs([call, output], chat=True)
    assert "c1" in refused(check_pairs, [call], True).message
    assert refused(check_pairs, [call], False).message == "No tool output found for function call c1."
    assert "c9" in refused(check_pairs, [ToolOutput("c9", "x")], False).message


def test_legacy_function_calls_get_an_id_from_their_place() -> None:
    message = {"role": "assistant", "function_call": {"name": "f", "arguments": '{"a":1}'}}
    assert chat_calls(message, 3) == [ToolCall("call_legacy_3", "f", '{"a":1}')]


def test_history_codec_keeps_calls_and_outputs() -> None:
    items = (Message("user", "q"), ToolCall("c1", "f", "{}"), ToolOutput("c1", "ok"), Message("assistant", "a"))
    assert decode_history(encode_history(items)) == items
    assert decode_history([{"role": "user", "text": "old rows have no kind"}]) == (
        Message("user", "old rows have no kind"),
    )


def test_names_codex_cannot_take_are_mapped_the_same_way_every_time() -> None:
    assert wire_name("get_weather") == "get_weather"
    for name in ("weather.lookup", "exec_command", "x" * 200, "météo"):
        mapped = wire_name(name)
        assert mapped != name and mapped == wire_name(name) and len(mapped) <= 64
        assert mapped.replace("_", "").replace("-", "").isalnum() and mapped not in CODEX_TOOLS
    names = ToolNames((ToolSpec("a.b", "", {}), ToolSpec("c", "", {})))
    assert names.client(wire_name("a.b")) == "a.b" and names.client("exec_command") is None


@pytest.mark.parametrize("order", [1, -1])
def test_two_names_that_map_to_one_get_distinct_names(order: int) -> None:
    """A client name that looks like another's stand-in keeps its own; the stand-in gets a longer hash."""
    odd, lookalike = "weather.lookup", wire_name("weather.lookup")
    names = ToolNames((ToolSpec(odd, "", {}), ToolSpec(lookalike, "", {}))[::order])
    assert names.wire(lookalike) == lookalike and names.wire(odd) not in (lookalike, odd)
    assert names.wire(odd).startswith("weather_lookup_") and len(names.wire(odd)) <= 128
    assert names.client(names.wire(odd)) == odd and names.client(lookalike) == lookalike


def test_a_conversation_ending_with_outputs_is_all_history() -> None:
    spec = ToolSpec("a.b", "", SCHEMA)
    messages = (
        Message("user", "q"),
        Message("assistant", "let me see"),
        ToolCall("c1", "a.b", "{}"),
        ToolOutput("c1", "r"),
    )
    items, prompt = split_conversation(messages, ToolNames((spec,)))
    assert prompt is None
    assert [i["type"] for i in items] == ["message", "message", "function_call", "function_call_output"]
    assert items[2]["name"] == wire_name("a.b") and items[3] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": "r",
    }
    turn = Turn("m", messages, POLICY, tools=(spec,))
    assert turn_params("t", None, turn)["input"] == []
    params = thread_params(turn)
    assert params["experimentalRawEvents"] and params["dynamicTools"] == [
        {"type": "function", "name": wire_name("a.b"), "description": "", "inputSchema": SCHEMA}
    ]
    assert "dynamicTools" not in thread_params(Turn("m", messages, POLICY))


def raw_item(turn: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"method": "rawResponseItem/completed", "params": {"threadId": "t", "turnId": turn, "item": item}}


def test_client_calls_come_once_the_response_is_complete() -> None:
    calls = ClientCalls(ToolNames((ToolSpec("f", "", {}), ToolSpec("g", "", {}))), "turn1")
    echoed = raw_item("auto-compact-0", {"type": "function_call", "name": "f", "call_id": "old", "arguments": "{}"})
    assert calls.feed(echoed) is None
    assert calls.feed(raw_item("turn1", {"type": "function_call", "name": "exec_command", "call_id": "x"})) is None
    assert (
        calls.feed(raw_item("turn1", {"type": "function_call", "name": "g", "call_id": "c2", "arguments": "{ }"}))
        is None
    )
    ask = {"turnId": "turn1", "callId": "c3", "tool": "f", "arguments": {"a": 1}}
    request = {"id": 7, "method": "item/tool/call", "params": ask}
    assert calls.feed(request) is None
    usage = {"inputTokens": 5, "outputTokens": 2}
    done = {"method": "rawResponse/completed", "params": {"turnId": "turn1", "usage": usage}}
    assert calls.feed(done) == [ToolCall("c2", "g", "{ }"), ToolCall("c3", "f", '{"a": 1}')]
    assert calls.usage.input_tokens == 5 and calls.usage.output_tokens == 2


async def test_the_contract_check() -> None:
    spec = ToolSpec("f", "", SCHEMA, strict=True)
    required = Turn("m", (), POLICY, tools=(spec,), tool_choice=ToolChoice("required"))
    schemas = SchemaChecker(SchemaLimits())

    async def broken(turn: Turn, calls: list[ToolCall]) -> str | None:
        return await broken_contract(turn, calls, schemas)

    assert "without calling a function" in str(await broken(required, []))
    assert await broken(required, [ToolCall("c", "f", '{"city": "x"}')]) is None
    assert "at (root)" in str(await broken(required, [ToolCall("c", "f", "{}")]))
    assert "not JSON" in str(await broken(required, [ToolCall("c", "f", "{")]))
    loose = Turn("m", (), POLICY, tools=(ToolSpec("f", "", SCHEMA),))
    assert await broken(loose, [ToolCall("c", "f", "{")]) is None and await broken(loose, []) is None


async def test_routed_server_requests_wait_for_their_thread_then_get_the_default_answer() -> None:
    peer = FakePeer()
    session = RpcSession(peer.to_session, peer.writer(), refuse)
    session.start()
    queue = session.subscribe("t1", ("item/tool/call",))
    peer.say({"id": 5, "method": "item/tool/call", "params": {"threadId": "t1", "callId": "c"}})
    peer.say({"id": 6, "method": "item/commandExecution/requestApproval", "params": {"threadId": "t1"}})
    routed = await queue.get()
    assert routed is not None and routed["id"] == 5
    assert (await peer.sent.get()) == {"id": 6, "result": {"decision": "decline"}}  # not routed: answered at once
    assert peer.sent.empty()
    session.unsubscribe("t1")
    answer = await asyncio.wait_for(peer.sent.get(), 2)
    assert answer["id"] == 5 and answer["result"]["success"] is False
    await session.close()
