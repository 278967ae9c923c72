"""LangChain's ChatOpenAI, as its docs show: bind_tools with a ToolMessage loop, with_structured_output."""

from __future__ import annotations

import json

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.clients.conftest import function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@tool
def get_time(timezone: str) -> str:
    """The local time in a timezone."""
    return f"12:00 in {timezone}"


class Weather(BaseModel):
    """The weather report to give the user."""

    city: str = Field(description="The city")
    celsius: int = Field(description="Temperature in degrees Celsius")


def chat_model(base_url: str) -> ChatOpenAI:
    return ChatOpenAI(model="fake-model", base_url=base_url, api_key="unused", max_retries=0)


def test_bind_tools_with_a_tool_message_loop(base_url: str, provider: FakeProvider) -> None:
    paris = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    cet = {"name": "get_time", "arguments": '{"timezone":"CET"}'}
    steps = [[paris, cet], [{"name": "get_weather", "arguments": '{"city":"Rome"}'}]]
    marker = provider.script("langchain-loop", Script(calls=steps, deltas=["Paris and Rome are sunny."]))
    llm = chat_model(base_url).bind_tools([get_weather, get_time])
    tools = {"get_weather": get_weather, "get_time": get_time}
    messages: list = [HumanMessage(f"Weather in Paris and Rome, and the time? {marker}")]
    rounds = 0
    while True:
        reply = llm.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            break
        rounds += 1
        for call in reply.tool_calls:
            messages.append(ToolMessage(tools[call["name"]].invoke(call["args"]), tool_call_id=call["id"]))
    assert rounds == 2 and reply.content == "Paris and Rome are sunny."
    outputs = [output for _, output in function_outputs(requests_with(provider, marker)[-1])]
    assert outputs == ["Sunny in Paris", "12:00 in CET", "Sunny in Rome"]


def test_with_structured_output_by_function_calling(base_url: str, provider: FakeProvider) -> None:
    call = {"name": "Weather", "arguments": json.dumps({"city": "Paris", "celsius": 21})}
    marker = provider.script("langchain-structured", Script(calls=[[call]]))
    structured = chat_model(base_url).with_structured_output(Weather, method="function_calling")
    report = structured.invoke(f"Report the weather in Paris. {marker}")
    assert report == Weather(city="Paris", celsius=21)
    offered = [t.get("name") for t in requests_with(provider, marker)[-1]["tools"]]
    assert "Weather" in offered
