"""app/api/responses.py in-process: a FakeEngine's scripted events rendered as Responses (JSON and events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.turn import Completed, Failed, FailureKind, ReasoningDelta, TextDelta, ToolCall, Usage, UsageReport, WebSearch
from tests.fakes.engine import FAKE_MODEL, InProcess, answer, in_process, sse_data

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CALL = ToolCall("call_1", "get_weather", '{"city":"Paris"}')


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path) as running:
        yield running


async def create(gw: InProcess, **body: Any) -> Any:
    return await gw.client.post("/v1/responses", json={"model": FAKE_MODEL, "input": "hi", **body})


async def events(gw: InProcess, **body: Any) -> list[dict[str, Any]]:
    response = await create(gw, stream=True, **body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [block for block in response.text.split("\n\n") if block]
    parsed = [json.loads(data) for data in sse_data(response.text)]
    assert [frame.splitlines()[0] for frame in frames] == [f"event: {event['type']}" for event in parsed]
    return parsed


async def test_stream_events_are_exact_and_numbered_from_zero(gw: InProcess) -> None:
    gw.engine.play(TextDelta("a"), TextDelta("b"), UsageReport(Usage(7, 0, 2)), Completed("ab"))
    stream = await events(gw)
    assert [event["type"] for event in stream] == TEXT_EVENTS
    assert [event["sequence_number"] for event in stream] == list(range(len(stream)))
    assert "".join(e["delta"] for e in stream if e["type"] == "response.output_text.delta") == "ab"
    final = stream[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["input_tokens"] == 7
    assert final["output"][0]["content"][0]["text"] == "ab" and final["output"][0]["status"] == "completed"
    assert len({e["response"]["id"] for e in stream if "response" in e}) == 1


async def test_json_answer(gw: InProcess) -> None:
    gw.engine.play(*answer("Hello", Usage(5, 1, 2, 1)))
    body = (await create(gw, metadata={"k": "v"})).json()
    assert body["object"] == "response" and body["status"] == "completed" and body["id"].startswith("resp_")
    assert [item["type"] for item in body["output"]] == ["message"]
    assert body["output"][0]["content"][0]["text"] == "Hello"
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 1}
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 1}
    assert body["metadata"] == {"k": "v"}


async def test_an_empty_answer_is_still_a_message(gw: InProcess) -> None:
    gw.engine.play(Completed(""))
    body = (await create(gw)).json()
    assert [(item["type"], item["content"][0]["text"]) for item in body["output"]] == [("message", "")]


async def test_reasoning_is_its_own_output_item(gw: InProcess) -> None:
    gw.engine.play(ReasoningDelta("thinking "), ReasoningDelta("hard"), *answer("x"))
    stream = await events(gw)
    types = [event["type"] for event in stream]
    assert types[: types.index("response.output_item.done") + 1] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    final = stream[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["summary"][0]["text"] == "thinking hard"


@pytest.mark.parametrize(("kind", "status"), [(FailureKind.UPSTREAM, 502), (FailureKind.RATE_LIMITED, 429)])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_failure_before_any_output_is_an_http_status(
    gw: InProcess, kind: FailureKind, status: int, stream: bool
) -> None:
    gw.engine.play(Failed(kind, "boom"))
    response = await create(gw, stream=stream)
    assert response.status_code == status and "boom" in response.json()["error"]["message"]


async def test_a_failure_mid_stream_ends_in_response_failed(gw: InProcess) -> None:
    gw.engine.play(ReasoningDelta("r"), TextDelta("part"), Failed(FailureKind.UPSTREAM, "dropped"))
    stream = await events(gw)
    types = [event["type"] for event in stream]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    final = stream[-1]["response"]
    assert final["status"] == "failed" and final["error"]["code"] == "server_error"
    assert "dropped" in final["error"]["message"]
    assert [event["sequence_number"] for event in stream] == list(range(len(stream)))


async def test_a_failure_after_output_in_json_is_a_failed_response(gw: InProcess) -> None:
    gw.engine.play(TextDelta("part"), Failed(FailureKind.RATE_LIMITED, "slow down"))
    response = await create(gw)
    assert response.status_code == 429 and response.json()["error"]["code"] == "upstream_rate_limited"


async def test_a_function_call_item(gw: InProcess) -> None:
    gw.engine.play(TextDelta("Looking."), CALL, *answer(""))
    stream = await events(gw, tools=[WEATHER])
    types = [event["type"] for event in stream]
    start = types.index("response.output_item.added", types.index("response.output_text.done"))
    assert types[start:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, delta, done, item_done = stream[start : start + 4]
    assert added["item"]["arguments"] == "" and added["item"]["status"] == "in_progress"
    assert delta["delta"] == done["arguments"] == '{"city":"Paris"}'
    assert item_done["item"] | {"id": "x"} == {
        "id": "x",
        "type": "function_call",
        "status": "completed",
        "arguments": '{"city":"Paris"}',
        "call_id": "call_1",
        "name": "get_weather",
    }
    body = stream[-1]["response"]
    assert [item["type"] for item in body["output"]] == ["message", "function_call"]


async def test_a_custom_tool_call_carries_its_input(gw: InProcess) -> None:
    gw.engine.play(ToolCall("call_9", "run_sql", json.dumps({"input": "SELECT 1"})), *answer(""))
    tools = [{"type": "custom", "name": "run_sql", "description": "Runs SQL."}]
    body = (await create(gw, tools=tools)).json()
    item = body["output"][0]
    assert (item["type"], item["name"], item["call_id"], item["input"]) == (
        "custom_tool_call",
        "run_sql",
        "call_9",
        "SELECT 1",
    )
    gw.engine.play(ToolCall("call_9", "run_sql", json.dumps({"input": "SELECT 1"})), *answer(""))
    stream = await events(gw, tools=tools)
    types = [event["type"] for event in stream]
    assert "response.function_call_arguments.delta" not in types
    assert [e["delta"] for e in stream if e["type"] == "response.custom_tool_call_input.delta"] == ["SELECT 1"]
    assert [e["input"] for e in stream if e["type"] == "response.custom_tool_call_input.done"] == ["SELECT 1"]


async def test_strict_arguments_that_break_the_schema_are_asked_for_again(gw: InProcess) -> None:
    bad = ToolCall("call_1", "get_weather", '{"town":"Paris"}')
    gw.engine.play(bad, *answer("")).play(CALL, *answer(""))
    body = (await create(gw, tools=[WEATHER])).json()  # strict is the Responses default
    assert body["output"][0]["arguments"] == '{"city":"Paris"}'
    assert len(gw.engine.turns) == 2


async def test_a_web_search_item(tmp_path: Path) -> None:
    async with in_process(tmp_path, codex_client_web_search="cached") as gw:
        gw.engine.play(WebSearch({"type": "search", "query": "weather"}), *answer("Sunny"))
        stream = await events(gw, tools=[{"type": "web_search"}])
        types = [event["type"] for event in stream]
        assert types[2:8] == [
            "response.output_item.added",
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed",
            "response.output_item.done",
            "response.output_item.added",
        ]
        item = stream[6]["item"]
        assert (item["type"], item["status"], item["action"]) == (
            "web_search_call",
            "completed",
            {"type": "search", "query": "weather"},
        )
        assert gw.engine.turns[0].web_search == "cached"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": []}, "input"),
        ({"input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]}, "input"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:x"}]}]},
            "input[0].content[0].image_url",
        ),
        ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
        ({"input": "x", "reasoning": {"effort": "galactic"}}, "reasoning.effort"),
        ({"input": "x", "reasoning": {"summary": "verbose"}}, "reasoning.summary"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        (
            {"input": "x", "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": 5}}}},
            "text.format.schema",
        ),
        ({"input": "x", "frobnicate": 1}, "frobnicate"),
        ({"input": "x", "x_codex": {"sandbox": "yolo"}}, "x_codex.sandbox"),
        ({"input": "x", "previous_response_id": "resp_nope"}, "previous_response_id"),
    ],
)
async def test_bad_input_is_refused(gw: InProcess, body: dict[str, Any], param: str) -> None:
    """Moved from tests/integration/test_responses.py: refused before any engine runs."""
    response = await gw.client.post("/v1/responses", json={"model": FAKE_MODEL, **body})
    assert response.status_code in (400, 404)
    error = response.json()["error"]
    assert error["param"] == param and error["message"]
    assert gw.engine.turns == []


async def test_ignored_params_are_named(gw: InProcess) -> None:
    """Moved from tests/integration/test_responses.py."""
    response = await create(gw, input="x", temperature=0.3, top_p=0.5, max_output_tokens=99)
    assert response.status_code == 200
    assert set(response.headers["x-codex-ignored-params"].split(",")) == {"temperature", "top_p", "max_output_tokens"}
    assert response.json()["temperature"] == 0.3


async def test_a_stored_answer_continues_with_previous_response_id(gw: InProcess) -> None:
    gw.engine.play(*answer("first answer")).play(*answer("second"))
    first = (await create(gw, input="remember me")).json()
    second = (await create(gw, input="and now?", previous_response_id=first["id"])).json()
    assert second["previous_response_id"] == first["id"]
    texts = [getattr(item, "text", None) for item in gw.engine.turns[1].messages]
    assert texts == ["remember me", "first answer", "and now?"]
    assert (await gw.client.get(f"/v1/responses/{first['id']}")).json()["output"] == first["output"]
