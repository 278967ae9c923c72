"""LiteLLM, as its docs show: `completion` with `tools` against an OpenAI-compatible base URL, then the results."""

from __future__ import annotations

import json

import litellm
import pytest

from tests.clients.conftest import function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script

# litellm's own types trip pydantic's ReadOnly warning on import; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Items? .*ReadOnly:UserWarning")
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
