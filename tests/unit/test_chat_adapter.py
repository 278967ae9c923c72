"""app/api/chat.py in-process: a FakeEngine's scripted events rendered as Chat Completions (JSON and stream)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.turn import Completed, Failed, FailureKind, ReasoningDelta, TextDelta, ToolCall, Usage, UsageReport
from tests.fakes.engine import FAKE_MODEL, Hold, InProcess, answer, in_process, sse_data

USER = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path) as running:
        yield running


async def chat(gw: InProcess, **body: Any) -> Any:
    return await gw.client.post("/v1/chat/completions", json={"model": FAKE_MODEL, "messages": USER, **body})


async def chunks(gw: InProcess, **body: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The stream's JSON payloads, and all its data lines (to see [DONE])."""
    response = await chat(gw, stream=True, **body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = sse_data(response.text)
    return [json.loads(line) for line in data if line != "[DONE]"], data


async def test_json_answer_and_usage(gw: InProcess) -> None:
    gw.engine.play(TextDelta("Hel"), TextDelta("lo"), UsageReport(Usage(42, 3, 5, 2)), Completed("Hello"))
    body = (await chat(gw)).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == FAKE_MODEL
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == "Hello"
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 42,
        "completion_tokens": 5,
        "total_tokens": 47,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert gw.engine.turns[0].messages[-1].text == "hi"  # type: ignore[union-attr]


async def test_stream_shape_with_include_usage(gw: InProcess) -> None:
    gw.engine.play(TextDelta("a"), TextDelta("b"), TextDelta("c"), UsageReport(Usage(9, 0, 3)), Completed("abc"))
    payloads, data = await chunks(gw, stream_options={"include_usage": True})
    assert data[-1] == "[DONE]"
    assert len({p["id"] for p in payloads}) == 1 and all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # the role first, alone
    assert [p["choices"][0]["delta"].get("content") for p in payloads[1:4]] == ["a", "b", "c"]
    finishing = [p for p in payloads if p["choices"] and p["choices"][0]["finish_reason"]]
    assert len(finishing) == 1 and finishing[0]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["prompt_tokens"] == 9  # the usage chunk last


async def test_stream_without_include_usage_has_no_usage_chunk(gw: InProcess) -> None:
    """Moved from tests/integration/test_chat.py: only the adapter decides this."""
    payloads, data = await chunks(gw)
    assert data[-1] == "[DONE]"
    assert all(p["choices"] and "usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (FailureKind.UPSTREAM, 502, "upstream_error"),
        (FailureKind.RATE_LIMITED, 429, "upstream_rate_limited"),
        (FailureKind.TIMEOUT, 504, "timeout"),
        (FailureKind.CRASHED, 502, "codex_failed"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_failure_before_any_output_is_an_http_status(
    gw: InProcess, kind: FailureKind, status: int, code: str, stream: bool
) -> None:
    gw.engine.play(Failed(kind, "boom"))
    response = await chat(gw, stream=stream)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and "boom" in error["message"]


async def test_a_failure_mid_stream_is_an_error_chunk_then_done(gw: InProcess) -> None:
    gw.engine.play(ReasoningDelta("hmm"), TextDelta("partial"), Failed(FailureKind.UPSTREAM, "dropped"))
    payloads, data = await chunks(gw)
    assert data[-1] == "[DONE]"
    assert payloads[-1]["error"]["code"] == "upstream_error" and "dropped" in payloads[-1]["error"]["message"]
    assert not any(p.get("choices") and p["choices"][0]["finish_reason"] for p in payloads[:-1])
    assert gw.engine.closed == 1


async def test_an_engine_error_mid_stream_ends_the_turn_cleanly(gw: InProcess) -> None:
    gw.engine.play(TextDelta("partial"), RuntimeError("engine bug"))
    payloads, data = await chunks(gw)
    assert data[-1] == "[DONE]"
    assert payloads[-1]["error"]["code"] == "codex_failed" and "engine bug" in payloads[-1]["error"]["message"]


async def test_a_turn_without_a_terminal_event_is_a_502(gw: InProcess) -> None:
    gw.engine.play(TextDelta("half"))  # the engine's stream ends without Completed or Failed
    response = await chat(gw)
    assert response.status_code == 502
    assert "without an answer" in response.json()["error"]["message"]


async def test_reasoning_is_shown_as_reasoning_content(gw: InProcess) -> None:
    gw.engine.play(ReasoningDelta("think "), ReasoningDelta("hard"), *answer("x"))
    assert (await chat(gw)).json()["choices"][0]["message"]["reasoning_content"] == "think hard"
    gw.engine.play(ReasoningDelta("think"), *answer("x"))
    payloads, _ = await chunks(gw)
    assert [p["choices"][0]["delta"] for p in payloads if "reasoning_content" in p["choices"][0]["delta"]] == [
        {"reasoning_content": "think"}
    ]


async def test_hidden_reasoning_is_not_sent(tmp_path: Path) -> None:
    async with in_process(tmp_path, codex_hide_reasoning=True) as gw:
        gw.engine.play(ReasoningDelta("secret"), *answer("x"))
        assert "secret" not in (await chat(gw)).text
        gw.engine.play(ReasoningDelta("secret"), *answer("x"))
        assert "secret" not in (await chat(gw, stream=True)).text
        assert gw.engine.turns[0].policy.hide_reasoning


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_strings_cut_the_answer_and_end_the_turn(gw: InProcess, stream: bool) -> None:
    """Moved from tests/integration/test_outputs.py (a stop string split across deltas, one of two)."""
    gw.engine.play(TextDelta("one two "), TextDelta("thr"), TextDelta("ee END four"), TextDelta(" five"), *answer(""))
    kwargs = {"stop": ["ee END", "zzz"]}
    if stream:
        payloads, _ = await chunks(gw, **kwargs)
        text = "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads)
        finish = [p["choices"][0]["finish_reason"] for p in payloads if p["choices"][0]["finish_reason"]]
    else:
        choice = (await chat(gw, **kwargs)).json()["choices"][0]
        text, finish = choice["message"]["content"], [choice["finish_reason"]]
    assert text == "one two thr"
    assert finish == ["stop"]
    assert gw.engine.closed == 1  # the turn was closed at the stop, not run to its end


async def test_a_single_stop_string_is_accepted(gw: InProcess) -> None:
    gw.engine.play(TextDelta("abc;def"), *answer(""))
    assert (await chat(gw, stop=";")).json()["choices"][0]["message"]["content"] == "abc"


CALL = ToolCall("call_1", "get_weather", '{"city":"Paris"}')


async def test_a_tool_call_as_json(gw: InProcess) -> None:
    gw.engine.play(TextDelta("Let me look."), CALL, *answer(""))
    body = (await chat(gw, tools=[WEATHER])).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    assert gw.engine.turns[0].tools[0].name == "get_weather"


async def test_tool_calls_streamed_with_their_index(gw: InProcess) -> None:
    second = ToolCall("call_2", "get_weather", '{"city":"Rome"}')
    gw.engine.play(TextDelta("Two."), CALL, second, *answer(""))
    payloads, data = await chunks(gw, tools=[WEATHER])
    assert data[-1] == "[DONE]"
    deltas = [p["choices"][0]["delta"] for p in payloads if "tool_calls" in p["choices"][0]["delta"]]
    heads = [d["tool_calls"][0] for d in deltas if "id" in d["tool_calls"][0]]
    assert [(h["index"], h["id"], h["function"]) for h in heads] == [
        (0, "call_1", {"name": "get_weather", "arguments": ""}),
        (1, "call_2", {"name": "get_weather", "arguments": ""}),
    ]
    arguments = [d["tool_calls"][0] for d in deltas if "id" not in d["tool_calls"][0]]
    assert [(a["index"], a["function"]["arguments"]) for a in arguments] == [
        (0, '{"city":"Paris"}'),
        (1, '{"city":"Rome"}'),
    ]
    assert [p["choices"][0]["finish_reason"] for p in payloads if p["choices"][0]["finish_reason"]] == ["tool_calls"]


async def test_legacy_functions_get_a_function_call(gw: InProcess) -> None:
    function = WEATHER["function"]
    gw.engine.play(CALL, *answer(""))
    choice = (await chat(gw, functions=[function])).json()["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    gw.engine.play(CALL, *answer(""))
    payloads, _ = await chunks(gw, functions=[function])
    calls = [p["choices"][0]["delta"]["function_call"] for p in payloads if "function_call" in p["choices"][0]["delta"]]
    assert calls == [{"name": "get_weather", "arguments": ""}, {"arguments": '{"city":"Paris"}'}]


async def test_parallel_tool_calls_false_keeps_the_first_call(gw: InProcess) -> None:
    gw.engine.play(CALL, ToolCall("call_2", "get_weather", "{}"), *answer(""))
    body = (await chat(gw, tools=[WEATHER], parallel_tool_calls=False)).json()
    assert [call["id"] for call in body["choices"][0]["message"]["tool_calls"]] == ["call_1"]


async def test_a_required_call_is_asked_for_once_more(gw: InProcess) -> None:
    gw.engine.play(*answer("no call")).play(CALL, *answer(""))
    body = (await chat(gw, tools=[WEATHER], tool_choice="required")).json()
    assert body["choices"][0]["message"]["tool_calls"][0]["id"] == "call_1"
    assert len(gw.engine.turns) == 2
    gw.engine.play(*answer("no call")).play(*answer("still none"))
    response = await chat(gw, tools=[WEATHER], tool_choice="required")
    assert response.status_code == 502 and response.json()["error"]["code"] == "tool_call_not_honoured"


async def test_ignored_params_are_named_in_a_header(gw: InProcess) -> None:
    response = await chat(gw, temperature=0.2, seed=7, max_tokens=10)
    assert response.status_code == 200
    assert set(response.headers["x-codex-ignored-params"].split(",")) == {"temperature", "seed", "max_tokens"}


async def test_a_full_queue_is_a_429_with_retry_after(tmp_path: Path) -> None:
    hold = Hold()
    async with in_process(tmp_path, codex_max_parallel_requests=1, codex_max_queue=0) as gw:
        gw.engine.play(TextDelta("slow"), hold, Completed("slow"))
        first = asyncio.create_task(chat(gw))
        try:
            await hold.reached.wait()  # the only slot is taken
            response = await chat(gw)
        finally:
            hold.release.set()
        assert response.status_code == 429 and response.headers["retry-after"]
        assert response.json()["error"]["code"] == "queue_full"
        assert (await first).json()["choices"][0]["message"]["content"] == "slow"
