"""The OpenAI Agents SDK, as its docs show: an Agent with two @function_tool functions, run to its final answer."""

from __future__ import annotations

import json

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.clients.conftest import function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script

set_tracing_disabled(True)
CALLED: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLED.append(f"get_weather({city})")
    return f"Sunny in {city}"


@function_tool
def get_time(timezone: str) -> str:
    """The local time in a timezone."""
    CALLED.append(f"get_time({timezone})")
    return f"12:00 in {timezone}"


STEPS = [
    [{"name": "get_weather", "arguments": '{"city":"Paris"}'}],
    [{"name": "get_time", "arguments": '{"timezone":"Europe/Paris"}'}],
]


def agent_for(model_class: type, base_url: str) -> Agent:
    client = AsyncOpenAI(base_url=base_url, api_key="unused")
    return Agent(
        name="Assistant",
        instructions="Answer with the tools.",
        model=model_class(model="fake-model", openai_client=client),
        tools=[get_weather, get_time],
    )


@pytest.mark.parametrize("model_class", [OpenAIResponsesModel, OpenAIChatCompletionsModel])
async def test_a_multi_step_run(base_url: str, provider: FakeProvider, model_class: type) -> None:
    marker = provider.script(f"agents-{model_class.__name__}", Script(calls=STEPS, deltas=["Sunny, noon."]))
    CALLED.clear()
    result = await Runner.run(agent_for(model_class, base_url), f"Weather and time in Paris? {marker}")
    assert result.final_output == "Sunny, noon."
    assert CALLED == ["get_weather(Paris)", "get_time(Europe/Paris)"]
    asked = requests_with(provider, marker)
    assert len(asked) == 3  # one model request per step: no turn of Codex ran on without the client
    assert [output for _, output in function_outputs(asked[-1])] == ["Sunny in Paris", "12:00 in Europe/Paris"]
    strict = [t for t in asked[0]["tools"] if t.get("name") == "get_weather"]
    assert strict and json.dumps(strict[0]["parameters"]).count('"city"') >= 1


async def test_a_streamed_run(base_url: str, provider: FakeProvider) -> None:
    marker = provider.script("agents-streamed", Script(calls=STEPS, deltas=["Streamed ", "answer."]))
    CALLED.clear()
    result = Runner.run_streamed(agent_for(OpenAIResponsesModel, base_url), f"Go {marker}")
    kinds = [event.type async for event in result.stream_events()]
    assert result.final_output == "Streamed answer."
    assert CALLED == ["get_weather(Paris)", "get_time(Europe/Paris)"]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
