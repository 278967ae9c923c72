"""Function calling on /v1/chat/completions: the real Codex app-server, the fake model calling client functions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, RunningGateway, run_gateway, wait_for
from tests.integration.test_operations import metric_value

StartGateway = Callable[..., RunningGateway]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, TIME]
PARIS = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
NOW = {"name": "get_time", "arguments": "{}"}


@pytest.fixture(scope="module")
def gateway(codex_home: Path, workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The app-server engine in its default (agent) mode: Codex's tools beside the client's."""
    log = tmp_path_factory.mktemp("logs") / "gateway-tools-chat.log"
    with run_gateway(codex_home, workdir, log, CODEX_ENGINE="app-server", CODEX_TIMEOUT="30") as running:
        yield running


def bodies(provider: FakeProvider, marker: str) -> list[dict[str, Any]]:
    return [body for body in provider.requests if marker in json.dumps(body)]


def client_tools(body: dict[str, Any]) -> set[str]:
    return {tool.get("name") for tool in body.get("tools", [])} & {"get_weather", "get_time"}


def calls_of(reply: Any) -> list[dict[str, Any]]:
    """The calls of a non-stream reply, as plain dicts."""
    calls = reply.choices[0].message.tool_calls or []
    return [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in calls]


def stream_reply(client: openai.OpenAI, **kwargs: Any) -> tuple[str, list[dict[str, Any]], str | None, list[Any]]:
    """Text, calls (assembled from their deltas), finish reason and the raw chunks of a streamed reply."""
    chunks = list(client.chat.completions.create(model=FAKE_MODEL, stream=True, **kwargs))
    text, calls, finish = "", [], None
    for chunk in chunks:
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            if delta.id:
                assert delta.index == len(calls) and delta.type == "function" and delta.function.arguments == ""
                calls.append({"id": delta.id, "name": delta.function.name, "arguments": ""})
            else:
                calls[delta.index]["arguments"] += delta.function.arguments or ""
    return text, calls, finish, chunks


def answered(messages: list[dict[str, Any]], calls: list[dict[str, Any]], text: str | None = None) -> list[dict]:
    """The conversation as a client continues it: the assistant's calls, then one tool message per call."""
    tool_calls = [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls
    ]
    outputs = [{"role": "tool", "tool_call_id": c["id"], "content": f"{c['name']} says 21C"} for c in calls]
    return [*messages, {"role": "assistant", "content": text, "tool_calls": tool_calls}, *outputs]


@pytest.mark.parametrize("stream", [False, True])
def test_a_two_step_loop(gateway: RunningGateway, provider: FakeProvider, stream: bool) -> None:
    marker = provider.script(f"loop-{stream}", Script(calls=[[PARIS]], deltas=["It is ", "21C in Paris."]))
    client = gateway.client()
    messages = [{"role": "user", "content": f"Weather in Paris? {marker}"}]
    if stream:
        text, calls, finish, _ = stream_reply(client, messages=messages, tools=TOOLS)
        assert text == ""
    else:
        reply = client.chat.completions.create(model=FAKE_MODEL, messages=messages, tools=TOOLS)
        message, finish = reply.choices[0].message, reply.choices[0].finish_reason
        assert message.content is None and message.role == "assistant"
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls]
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0]["id"].startswith("call_")
    assert len(bodies(provider, marker)) == 1  # the turn ended with the call: Codex did not answer it itself
    follow = answered(messages, calls)
    if stream:
        text, more, finish, _ = stream_reply(client, messages=follow, tools=TOOLS)
    else:
        reply = client.chat.completions.create(model=FAKE_MODEL, messages=follow, tools=TOOLS)
        text, more, finish = reply.choices[0].message.content, reply.choices[0].message.tool_calls, "stop"
        assert reply.choices[0].finish_reason == "stop"
    assert text == "It is 21C in Paris." and not more and finish == "stop"
    last = bodies(provider, marker)[-1]
    assert tool_outputs(last) == ["get_weather says 21C"]
    replayed = [item for item in last["input"] if item.get("type") == "function_call"]
    assert [(item["call_id"], item["name"]) for item in replayed] == [(calls[0]["id"], "get_weather")]
    assert "get_weather" in client_tools(last) and "exec_command" in {t.get("name") for t in last["tools"]}


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_calls_and_text_before_them(gateway: RunningGateway, provider: FakeProvider, stream: bool) -> None:
    script = Script(calls=[[PARIS, NOW]], call_text=["Let me ", "check."], argument_chunks=4, deltas=["Both done."])
    marker = provider.script(f"parallel-{stream}", script)
    client = gateway.client()
    messages = [{"role": "user", "content": marker}]
    if stream:
        text, calls, finish, chunks = stream_reply(client, messages=messages, tools=TOOLS)
        deltas = [c.choices[0].delta for c in chunks]
        order = ["text" if d.content else "call" for d in deltas if d.content or d.tool_calls]
        assert order.index("call") > order.index("text")  # the text streams before the calls
    else:
        reply = client.chat.completions.create(model=FAKE_MODEL, messages=messages, tools=TOOLS)
        text, finish = reply.choices[0].message.content, reply.choices[0].finish_reason
        calls = calls_of(reply)
    assert text == "Let me check." and finish == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in calls] == [("get_weather", '{"city":"Paris"}'), ("get_time", "{}")]
    assert len({c["id"] for c in calls}) == 2
    final = client.chat.completions.create(model=FAKE_MODEL, messages=answered(messages, calls, text), tools=TOOLS)
    assert final.choices[0].message.content == "Both done."
    assert sorted(tool_outputs(bodies(provider, marker)[-1])) == ["get_time says 21C", "get_weather says 21C"]


def test_parallel_tool_calls_false_returns_the_first_call_only(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("one-at-a-time", Script(calls=[[PARIS, NOW]]))
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], tools=TOOLS, parallel_tool_calls=False
    )
    assert [c.function.name for c in reply.choices[0].message.tool_calls] == ["get_weather"]


def test_tool_choice_none_offers_no_function(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("choice-none", Script(deltas=["plain answer"]))
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], tools=TOOLS, tool_choice="none"
    )
    assert reply.choices[0].message.content == "plain answer" and reply.choices[0].finish_reason == "stop"
    assert client_tools(bodies(provider, marker)[-1]) == set()


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_required_asks_again_once(gateway: RunningGateway, provider: FakeProvider, stream: bool) -> None:
    """Codex cannot force a call: an answer without one is asked for again (its text never reaches the client)."""
    marker = provider.script(f"required-{stream}", Script(calls=[[NOW]], calls_from_request=1, deltas=["no call"]))
    kwargs: dict[str, Any] = {
        "messages": [{"role": "user", "content": marker}],
        "tools": TOOLS,
        "tool_choice": "required",
    }
    if stream:
        text, calls, finish, _ = stream_reply(gateway.client(), **kwargs)
        names = [c["name"] for c in calls]
    else:
        reply = gateway.client().chat.completions.create(model=FAKE_MODEL, **kwargs)
        text, finish = reply.choices[0].message.content, reply.choices[0].finish_reason
        names = [c.function.name for c in reply.choices[0].message.tool_calls]
    assert names == ["get_time"] and finish == "tool_calls" and not text
    asked = bodies(provider, marker)
    assert len(asked) == 2 and "calling one or more of these functions" in json.dumps(asked[0]["input"])


def test_a_required_call_that_never_comes_is_a_502(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("never-calls", Script(deltas=["I will not call anything"]))
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], tools=TOOLS, tool_choice="required"
        )
    assert caught.value.status_code == 502 and caught.value.body["code"] == "tool_call_not_honoured"
    assert "asked twice" in caught.value.body["message"]
    assert len(bodies(provider, marker)) == 2
    with gateway.http() as http:  # counted and logged like any failed turn
        metrics = http.get("/metrics").text
    assert metric_value(metrics, "codex_wrapper_upstream_errors_total", kind="broken_contract") >= 1
    assert wait_for(lambda: '"status":502' in gateway.log() and '"error":"broken_contract"' in gateway.log())


def test_a_named_function_is_the_only_one_offered(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("named", Script(calls=[[NOW]]))
    choice = {"type": "function", "function": {"name": "get_time"}}
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], tools=TOOLS, tool_choice=choice
    )
    assert [c.function.name for c in reply.choices[0].message.tool_calls] == ["get_time"]
    body = bodies(provider, marker)[-1]
    assert client_tools(body) == {"get_time"} and "calling the function `get_time`" in json.dumps(body["input"])


def test_strict_arguments_are_checked(gateway: RunningGateway, provider: FakeProvider) -> None:
    strict = {**WEATHER, "function": {**WEATHER["function"], "strict": True}}
    marker = provider.script("bad-args", Script(calls=[[{"name": "get_weather", "arguments": '{"town":"Paris"}'}]]))
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], tools=[strict]
        )
    assert caught.value.status_code == 502 and "'city' is a required property" in caught.value.body["message"]
    assert len(bodies(provider, marker)) == 2
    loose = gateway.client().chat.completions.create(  # without strict, the arguments are the model's business
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], tools=[WEATHER]
    )
    assert loose.choices[0].message.tool_calls[0].function.arguments == '{"town":"Paris"}'


def test_names_codex_cannot_take_are_mapped_and_given_back(gateway: RunningGateway, provider: FakeProvider) -> None:
    odd = {"type": "function", "function": {"name": "weather.lookup", "parameters": {"type": "object"}}}
    clash = {"type": "function", "function": {"name": "exec_command", "parameters": {"type": "object"}}}
    first = provider.script("odd-names", Script(calls=[[]], deltas=["unused"]))
    gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": first}], tools=[odd, clash]
    )
    offered = {t.get("name"): t.get("description") for t in bodies(provider, first)[-1]["tools"]}
    odd_wire = next(name for name in offered if name and name.startswith("weather_lookup_"))
    clash_wire = next(name for name in offered if name and name.startswith("exec_command_"))
    assert "exec_command" in offered  # Codex's own shell stays
    wire_calls = [{"name": odd_wire, "arguments": "{}"}, {"name": clash_wire, "arguments": "{}"}]
    marker = provider.script("odd-call", Script(calls=[wire_calls], deltas=["ok"]))
    messages = [{"role": "user", "content": marker}]
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=messages, tools=[odd, clash])
    calls = [{"id": c.id, "name": c.function.name, "arguments": "{}"} for c in reply.choices[0].message.tool_calls]
    assert [c["name"] for c in calls] == ["weather.lookup", "exec_command"]
    gateway.client().chat.completions.create(model=FAKE_MODEL, messages=answered(messages, calls), tools=[odd, clash])
    replayed = [i["name"] for i in bodies(provider, marker)[-1]["input"] if i.get("type") == "function_call"]
    assert replayed == [odd_wire, clash_wire]


def test_legacy_functions(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("legacy", Script(calls=[[PARIS, NOW]]))
    then = provider.script("legacy-then", Script(calls=[[PARIS]], deltas=["legacy done"]))
    functions = [WEATHER["function"], TIME["function"]]
    messages: list[dict[str, Any]] = [{"role": "user", "content": marker}]
    with gateway.http() as http:
        reply = http.post(
            "/v1/chat/completions", json={"model": FAKE_MODEL, "messages": messages, "functions": functions}
        ).json()
        choice = reply["choices"][0]
        assert choice["finish_reason"] == "function_call" and "tool_calls" not in choice["message"]
        call = choice["message"]["function_call"]
        assert call == {"name": "get_weather", "arguments": '{"city":"Paris"}'}  # one call at most
        messages = [
            {"role": "user", "content": then},
            {"role": "assistant", "content": None, "function_call": call},
            {"role": "function", "name": "get_weather", "content": "sunny"},
        ]
        final = http.post(
            "/v1/chat/completions", json={"model": FAKE_MODEL, "messages": messages, "functions": functions}
        )
    assert final.json()["choices"][0]["message"]["content"] == "legacy done"
    assert tool_outputs(bodies(provider, then)[-1]) == ["sunny"]


def test_history_is_replayed_in_order_and_any_instance_continues(
    gateway: RunningGateway, start_gateway: StartGateway, provider: FakeProvider
) -> None:
    """The call comes from one gateway; its result goes to another (as after a restart): nothing waits in between."""
    marker = provider.script("replay", Script(calls=[[PARIS], [NOW]], deltas=["all done"]))
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": marker}]
    first = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=messages, tools=TOOLS)
    calls = calls_of(first)
    other = start_gateway(CODEX_ENGINE="app-server")
    messages = answered(messages, calls)
    second = other.client().chat.completions.create(model=FAKE_MODEL, messages=messages, tools=TOOLS)
    assert [c.function.name for c in second.choices[0].message.tool_calls] == ["get_time"]
    calls = calls_of(second)
    third = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=answered(messages, calls), tools=TOOLS)
    assert third.choices[0].message.content == "all done"
    steps = [
        (item.get("type", "message"), item.get("role") or item.get("name") or item.get("output"))
        for item in bodies(provider, marker)[-1]["input"]
        if item.get("type") in ("function_call", "function_call_output") or marker in json.dumps(item)
    ]
    assert steps == [
        ("message", "user"),
        ("function_call", "get_weather"),
        ("function_call_output", "get_weather says 21C"),
        ("function_call", "get_time"),
        ("function_call_output", "get_time says 21C"),
    ]


def test_a_call_without_its_result_is_a_400(gateway: RunningGateway) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [call]}]
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=messages, tools=TOOLS)
    assert "call_1" in caught.value.body["message"] and caught.value.body["param"] == "messages"


def test_chat_mode_offers_only_the_clients_functions(start_gateway: StartGateway, provider: FakeProvider) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server", CODEX_MODE="chat")
    marker = provider.script("chat-mode-tools", Script(calls=[[NOW]]))
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], tools=TOOLS
    )
    assert reply.choices[0].message.tool_calls[0].function.name == "get_time"
    names = {t.get("name") for t in bodies(provider, marker)[-1]["tools"]}
    # Codex 0.169 keeps request_user_input, which cannot be switched off (the gateway declines it)
    assert names == {"get_weather", "get_time", "request_user_input"}


def test_the_exec_engine_refuses_tools_by_name(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_ENGINE="exec")
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}], tools=TOOLS
        )
    assert caught.value.body["param"] == "tools" and "CODEX_ENGINE=app-server" in caught.value.body["message"]
    reply = gateway.client().chat.completions.create(  # with tool_choice none nothing is offered: exec serves it
        model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}], tools=TOOLS, tool_choice="none"
    )
    assert reply.choices[0].message.content == "pong"
