"""The OpenAI Agents SDK, as its docs show: an Agent with two @function_tool functions, run to its final answer
(app-server engine); the quickstart Agent with the SDK's default model and settings, two turns carried by
result.to_input_list(), run and streamed (both engines)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models import get_default_model, get_default_model_settings
from openai import AsyncOpenAI

from tests.clients.conftest import fresh, function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script
from tests.harness import RunningGateway

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


# The quickstart, as the SDK's docs show it: no model named, so the SDK's default model (a gpt-5.x name, which
# Codex's catalog serves) with its default settings for it: reasoning.effort "none" and text verbosity "low".
QUICKSTART = Agent(name="Assistant", instructions="You are a helpful assistant")


@pytest.fixture
def sdk_defaults(gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The SDK pointed at the gateway as its docs show for another base URL (a default client, new for each test:
    a client's connections belong to one event loop); the default API restored afterwards."""
    set_default_openai_client(AsyncOpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused"), use_for_tracing=False)
    monkeypatch.delenv("OPENAI_DEFAULT_MODEL", raising=False)
    model = get_default_model()
    assert model.startswith("gpt-5") and get_default_model_settings(model).reasoning.effort == "none"
    yield model
    set_default_openai_api("responses")


def check_defaults_reached_codex(provider: FakeProvider, marker: str, model: str) -> list[dict]:
    asked = requests_with(provider, marker)
    assert [body["model"] for body in asked] == [model, model]
    assert {body["reasoning"]["effort"] for body in asked} == {"low"}  # "none": the model's lowest, named
    assert {body["text"]["verbosity"] for body in asked} == {"low"}  # honoured: Codex's model_verbosity
    return asked


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
def test_the_quickstart_for_two_turns(sdk_defaults: str, provider: FakeProvider, api: str) -> None:
    set_default_openai_api(api)
    marker = provider.script(
        fresh(f"agents-quickstart-{api}"), Script(deltas=["Code calls itself."], reasoning=["zq-reasoning-note"])
    )
    result = Runner.run_sync(QUICKSTART, f"Write a haiku about recursion in programming. {marker}")
    assert result.final_output == "Code calls itself."
    history = result.to_input_list()
    if api == "responses":  # the reasoning item of the answer goes back with it
        assert [item.get("type") for item in history].count("reasoning") == 1
    again = Runner.run_sync(QUICKSTART, [*history, {"role": "user", "content": f"Another one. {marker}"}])
    assert again.final_output == "Code calls itself."
    asked = check_defaults_reached_codex(provider, marker, sdk_defaults)
    assert "Code calls itself." in json.dumps(asked[-1]["input"]) and "zq-reasoning-note" not in json.dumps(
        asked[-1]["input"]
    )


async def test_the_quickstart_streamed_for_two_turns(sdk_defaults: str, provider: FakeProvider) -> None:
    marker = provider.script(
        fresh("agents-quickstart-streamed"), Script(deltas=["Streamed ", "haiku."], reasoning=["r"])
    )
    history: list = [{"role": "user", "content": f"Write a haiku. {marker}"}]
    for _ in range(2):
        result = Runner.run_streamed(QUICKSTART, history)
        deltas = [
            event.data.delta
            async for event in result.stream_events()
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
        ]
        assert "".join(deltas) == result.final_output == "Streamed haiku."
        history = [*result.to_input_list(), {"role": "user", "content": f"Again. {marker}"}]
    check_defaults_reached_codex(provider, marker, sdk_defaults)
