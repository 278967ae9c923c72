"""LangChain's ChatOpenAI, as its docs show: bind_tools with a ToolMessage loop, with_structured_output (app-server
engine); multi-turn chats on chat completions and on the Responses API (both engines)."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.clients.conftest import fresh, function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script
from tests.harness import RunningGateway


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


# Multi-turn chats as LangChain's docs show them, with a gpt-5.x model name (Codex's catalog serves it) and the
# fake model's reasoning summaries on; both engines.
GPT5 = "gpt-5.5"


def streamed(llm: ChatOpenAI, messages: list) -> AIMessageChunk:
    """A reply streamed and its chunks added up, as the docs show."""
    full = None
    for chunk in llm.stream(messages):
        full = chunk if full is None else full + chunk
    assert isinstance(full, AIMessageChunk)
    return full


def test_chat_for_three_turns(gateway: RunningGateway, provider: FakeProvider) -> None:
    """Chat completions: each reply (with the reasoning the gateway sends as reasoning_content) appended to the
    message list, invoked and streamed."""
    marker = provider.script(fresh("langchain-chat"), Script(deltas=["Noted, Ann."], reasoning=["hm"]))
    llm = ChatOpenAI(model=GPT5, base_url=f"{gateway.base_url}/v1", api_key="unused", max_retries=0)
    messages: list = [SystemMessage("Be brief.")]
    for turn in range(3):
        messages.append(HumanMessage(f"I am Ann, turn {turn}. {marker}"))
        reply = streamed(llm, messages) if turn == 1 else llm.invoke(messages)
        assert reply.content == "Noted, Ann."
        messages.append(reply)
    last = json.dumps(requests_with(provider, marker)[-1]["input"])
    assert "turn 0" in last and last.count("Noted, Ann.") == 2


@pytest.mark.parametrize("carried", ["messages", "previous_response_id"])
def test_responses_api_for_three_turns(gateway: RunningGateway, provider: FakeProvider, carried: str) -> None:
    """use_responses_api=True with reasoning summaries: the reply (its reasoning block included) goes back in the
    message list, or the library sends only the new message with previous_response_id."""
    marker = provider.script(
        fresh(f"langchain-responses-{carried}"), Script(deltas=["Sure."], reasoning=["zq-reasoning-note"])
    )
    llm = ChatOpenAI(
        model=GPT5,
        base_url=f"{gateway.base_url}/v1",
        api_key="unused",
        max_retries=0,
        use_responses_api=True,
        reasoning={"effort": "low", "summary": "auto"},
        use_previous_response_id=carried == "previous_response_id",
    )
    messages: list = []
    for turn in range(3):
        messages.append(HumanMessage(f"step {turn} {marker}"))
        reply = streamed(llm, messages) if turn == 1 else llm.invoke(messages)
        assert reply.text == "Sure."
        assert any(block.get("type") == "reasoning" for block in reply.content if isinstance(block, dict))
        messages.append(reply)
    asked = requests_with(provider, marker)
    last = json.dumps(asked[-1]["input"])
    assert "step 0" in last and last.count("Sure.") == 2 and "zq-reasoning-note" not in last
