"""LiteLLM, as its docs show: `completion` with `tools` against an OpenAI-compatible base URL, then the results
(app-server engine); multi-turn `completion` and `responses` (both engines)."""

from __future__ import annotations

import json

import litellm
import pytest

from tests.clients.conftest import fresh, function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script
from tests.harness import RunningGateway

# litellm's own types trip pydantic's ReadOnly warning on import, and its streamed Responses usage (which it rewrites
# in chat form, with a cost) its own serializer; not ours to fix
pytestmark = [
    pytest.mark.filterwarnings("ignore:Items? .*ReadOnly:UserWarning"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    }
]


@pytest.mark.parametrize("stream", [False, True])
def test_tools(base_url: str, provider: FakeProvider, stream: bool) -> None:
    calls = [
        {"name": "get_current_weather", "arguments": '{"location": "San Francisco, CA", "unit": "celsius"}'},
        {"name": "get_current_weather", "arguments": '{"location": "Tokyo"}'},
    ]
    marker = provider.script(f"litellm-{stream}", Script(calls=[calls], deltas=["Both are mild."]))
    messages: list = [{"role": "user", "content": f"Weather in San Francisco and Tokyo? {marker}"}]
    options = {"model": "openai/fake-model", "api_base": base_url, "api_key": "unused", "tools": TOOLS}
    if stream:
        chunks = list(litellm.completion(messages=messages, stream=True, tool_choice="auto", **options))
        message = litellm.stream_chunk_builder(chunks, messages=messages).choices[0].message
    else:
        response = litellm.completion(messages=messages, tool_choice="auto", **options)
        assert response.choices[0].finish_reason == "tool_calls"
        message = response.choices[0].message
    assert [json.loads(c.function.arguments)["location"] for c in message.tool_calls] == ["San Francisco, CA", "Tokyo"]
    messages.append(message)
    for call in message.tool_calls:
        result = {"location": json.loads(call.function.arguments)["location"], "temperature": "18"}
        messages.append(
            {"tool_call_id": call.id, "role": "tool", "name": call.function.name, "content": json.dumps(result)}
        )
    final = litellm.completion(messages=messages, **options)
    assert final.choices[0].message.content == "Both are mild."
    outputs = [json.loads(output)["location"] for _, output in function_outputs(requests_with(provider, marker)[-1])]
    assert outputs == ["San Francisco, CA", "Tokyo"]


# Multi-turn, as LiteLLM's docs show: `completion` with the reply appended to `messages`, and `responses` carried
# by previous_response_id or by sending the output back; a gpt-5.x name, reasoning summaries on, both engines.
GPT5 = "openai/gpt-5.5"


def test_completion_for_three_turns(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script(fresh("litellm-chat"), Script(deltas=["Fine, thanks."], reasoning=["zq-reasoning-note"]))
    options = {"model": GPT5, "api_base": f"{gateway.base_url}/v1", "api_key": "unused"}
    messages: list = []
    for turn in range(3):
        messages.append({"role": "user", "content": f"How are you, turn {turn}? {marker}"})
        if turn == 1:
            chunks = list(litellm.completion(messages=messages, stream=True, **options))
            message = litellm.stream_chunk_builder(chunks, messages=messages).choices[0].message
        else:
            message = litellm.completion(messages=messages, **options).choices[0].message
            assert message.reasoning_content == "zq-reasoning-note"  # sent back with the message next turn
        assert message.content == "Fine, thanks."
        messages.append(message)
    last = json.dumps(requests_with(provider, marker)[-1]["input"])
    assert "turn 0" in last and last.count("Fine, thanks.") == 2 and "zq-reasoning-note" not in last


@pytest.mark.parametrize("carried", ["previous_response_id", "output"])
def test_responses_for_three_turns(gateway: RunningGateway, provider: FakeProvider, carried: str) -> None:
    marker = provider.script(fresh(f"litellm-responses-{carried}"), Script(deltas=["Sure."], reasoning=["zq-note"]))
    options = {"model": GPT5, "api_base": f"{gateway.base_url}/v1", "api_key": "unused"}
    reasoning = {"effort": "none", "summary": "auto"}  # "none": run as gpt-5.5's lowest effort, low
    history: list = []
    previous = None
    for turn in range(3):
        text = f"step {turn} {marker}"
        if carried == "previous_response_id":
            response = litellm.responses(input=text, previous_response_id=previous, reasoning=reasoning, **options)
            previous = response.id
        else:
            history.append({"role": "user", "content": text})
            response = litellm.responses(input=history, reasoning=reasoning, **options)
            history += [item.model_dump() for item in response.output]
        assert [item.type for item in response.output] == ["reasoning", "message"]
        assert response.output[-1].content[0].text == "Sure."
    asked = requests_with(provider, marker)
    assert {body["reasoning"]["effort"] for body in asked} == {"low"}
    last = json.dumps(asked[-1]["input"])
    assert "step 0" in last and last.count("Sure.") == 2 and "zq-note" not in last


def test_responses_streamed(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script(fresh("litellm-responses-stream"), Script(deltas=["Str", "eamed."]))
    options = {"model": GPT5, "api_base": f"{gateway.base_url}/v1", "api_key": "unused"}
    events = list(litellm.responses(input=f"go {marker}", stream=True, **options))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Streamed."
    assert events[-1].type == "response.completed"
