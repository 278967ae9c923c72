"""Function calling on /v1/responses: function tools, function_call items and events, outputs as input items."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, RunningGateway, run_gateway

StartGateway = Callable[..., RunningGateway]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}, "strict": False}
TOOLS = [WEATHER, TIME]
PARIS = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
NOW = {"name": "get_time", "arguments": "{}"}
CALL_EVENTS = [
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
]


@pytest.fixture(scope="module")
def gateway(codex_home: Path, workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    log = tmp_path_factory.mktemp("logs") / "gateway-tools-responses.log"
    with run_gateway(codex_home, workdir, log, CODEX_ENGINE="app-server", CODEX_TIMEOUT="30") as running:
        yield running


def bodies(provider: FakeProvider, marker: str) -> list[dict[str, Any]]:
    return [body for body in provider.requests if marker in json.dumps(body)]


def outputs_for(response: Any) -> list[dict[str, Any]]:
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": f"{item.name}: 21C"}
        for item in response.output
        if item.type == "function_call"
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_a_two_step_loop_with_previous_response_id(
    gateway: RunningGateway, provider: FakeProvider, stream: bool
) -> None:
    script = Script(calls=[[PARIS, NOW]], call_text=["Checking."], deltas=["Sunny, ", "noon."])
    marker = provider.script(f"resp-loop-{stream}", script)
    client = gateway.client()
    if stream:
        events = list(client.responses.create(model=FAKE_MODEL, input=marker, tools=TOOLS, stream=True))
        types = [e.type for e in events]
        collapsed = [t for n, t in enumerate(types) if t != "response.output_text.delta" or types[n - 1] != t]
        text_item = [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ]
        expected = ["response.created", "response.in_progress", *text_item, *CALL_EVENTS, *CALL_EVENTS]
        assert collapsed == [*expected, "response.completed"]
        added = [e for e in events if e.type == "response.output_item.added" and e.item.type == "function_call"]
        assert all(e.item.arguments == "" and e.item.status == "in_progress" for e in added)
        deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
        assert [d.delta for d in deltas] == ['{"city":"Paris"}', "{}"]
        assert [d.item_id for d in deltas] == [e.item.id for e in added]
        numbers = [e.sequence_number for e in events]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        first = events[-1].response
    else:
        first = client.responses.create(model=FAKE_MODEL, input=marker, tools=TOOLS)
    assert [item.type for item in first.output] == ["message", "function_call", "function_call"]
    assert first.output_text == "Checking."
    calls = first.output[1:]
    assert [(c.name, c.arguments, c.status) for c in calls] == [
        ("get_weather", '{"city":"Paris"}', "completed"),
        ("get_time", "{}", "completed"),
    ]
    assert all(c.id.startswith("fc_") and c.call_id.startswith("call_") for c in calls)
    assert [t.name for t in first.tools] == ["get_weather", "get_time"] and first.tool_choice == "auto"
    assert len(bodies(provider, marker)) == 1
    second = client.responses.create(
        model=FAKE_MODEL, input=outputs_for(first), previous_response_id=first.id, tools=TOOLS
    )
    assert second.output_text == "Sunny, noon." and [i.type for i in second.output] == ["message"]
    assert sorted(tool_outputs(bodies(provider, marker)[-1])) == ["get_time: 21C", "get_weather: 21C"]


def test_full_history_without_a_stored_response(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("resp-history", Script(calls=[[NOW]], deltas=["from history"]))
    history = [
        {"role": "user", "content": f"What time is it? {marker}"},
        {"type": "function_call", "call_id": "call_h1", "name": "get_time", "arguments": "{}", "id": "fc_h1"},
        {"type": "function_call_output", "call_id": "call_h1", "output": [{"type": "input_text", "text": "noon"}]},
    ]
    response = gateway.client().responses.create(model=FAKE_MODEL, input=history, tools=TOOLS, store=False)
    assert response.output_text == "from history"
    body = bodies(provider, marker)[-1]
    kinds = [(i.get("type"), i.get("call_id")) for i in body["input"] if i.get("type", "").startswith("function")]
    assert kinds == [("function_call", "call_h1"), ("function_call_output", "call_h1")]
    assert tool_outputs(body) == ["noon"]


def test_stored_responses_keep_the_calls(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("resp-stored", Script(calls=[[NOW]], deltas=["stored done"]))
    client = gateway.client()
    first = client.responses.create(model=FAKE_MODEL, input=marker, tools=TOOLS)
    assert client.responses.retrieve(first.id).output[0].type == "function_call"
    second = client.responses.create(
        model=FAKE_MODEL, input=outputs_for(first), previous_response_id=first.id, tools=TOOLS
    )
    listed = client.responses.input_items.list(second.id)
    assert [item.type for item in listed.data] == ["function_call_output"]
    # the chain continues from the stored calls and outputs: a third turn still sees them
    third_marker = provider.script("resp-stored-3", Script(deltas=["third"]))
    third = client.responses.create(model=FAKE_MODEL, input=third_marker, previous_response_id=second.id)
    assert third.output_text == "third"
    input_items = bodies(provider, third_marker)[-1]["input"]
    assert [i.get("type") for i in input_items if i.get("type", "").startswith("function")] == [
        "function_call",
        "function_call_output",
    ]


def test_a_call_left_without_output_is_a_400(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("resp-unanswered", Script(calls=[[NOW]]))
    client = gateway.client()
    first = client.responses.create(model=FAKE_MODEL, input=marker, tools=TOOLS)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=FAKE_MODEL, input="and now?", previous_response_id=first.id, tools=TOOLS)
    assert caught.value.body["message"] == f"No tool output found for function call {first.output[0].call_id}."


@pytest.mark.parametrize(
    ("label", "choice", "offered", "called"),
    [
        ("none", "none", set(), None),
        ("named", {"type": "function", "name": "get_time"}, {"get_time"}, "get_time"),
        ("allowed", {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]},  # noqa: E501
         {"get_weather"}, "get_weather"),
    ],
)  # fmt: skip
def test_tool_choice(
    gateway: RunningGateway, provider: FakeProvider, label: str, choice: Any, offered: set[str], called: str | None
) -> None:
    script = Script(calls=[[PARIS if called == "get_weather" else NOW]] if called else [], deltas=["text only"])
    marker = provider.script(f"resp-choice-{label}", script)
    response = gateway.client().responses.create(model=FAKE_MODEL, input=marker, tools=TOOLS, tool_choice=choice)
    body = bodies(provider, marker)[-1]
    assert {t.get("name") for t in body["tools"]} & {"get_weather", "get_time"} == offered
    if called is None:
        assert response.output_text == "text only"
    else:
        assert [i.name for i in response.output if i.type == "function_call"] == [called]
    echoed = response.tool_choice if isinstance(response.tool_choice, str) else response.tool_choice.model_dump()
    assert echoed == choice or {k: v for k, v in echoed.items() if v is not None} == choice


def test_strict_is_the_responses_default(gateway: RunningGateway, provider: FakeProvider) -> None:
    unset = {**WEATHER}
    del unset["strict"]
    marker = provider.script("resp-strict", Script(calls=[[{"name": "get_weather", "arguments": '{"city": 7}'}]]))
    with gateway.http() as http:
        reply = http.post("/v1/responses", json={"model": FAKE_MODEL, "input": marker, "tools": [unset]})
    assert reply.status_code == 502 and "is not of type 'string'" in reply.json()["error"]["message"]


def test_the_exec_engine_refuses_tools_by_name(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_ENGINE="exec")
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().responses.create(model=FAKE_MODEL, input="hi", tools=TOOLS)
    assert caught.value.body["param"] == "tools" and "app-server" in caught.value.body["message"]
