"""app/api/response_events.py: ResponseBuilder driven directly (its use by the endpoint: test_responses_adapter.py)."""

from __future__ import annotations

from typing import Any

from app.api.response_events import ResponseBuilder
from app.errors import ApiError
from app.turn import Failed, FailureKind, ToolCall, Usage, WebSearch


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def test_sequence_numbers_run_on_across_calls() -> None:
    builder = ResponseBuilder({"model": "m"})
    events = [*builder.start(), *builder.on_text("a"), *builder.on_text("b"), *builder.complete(Usage(1, 0, 1))]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert types(events) == [
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


def test_the_response_object_carries_the_request_fields_and_the_state() -> None:
    builder = ResponseBuilder({"model": "m", "metadata": {"k": "v"}})
    first = builder.response()
    assert (first["object"], first["status"], first["output"], first["usage"]) == ("response", "in_progress", [], None)
    assert first["model"] == "m" and first["metadata"] == {"k": "v"} and first["id"] == builder.id
    builder.on_text("hi")
    builder.complete(Usage(2, 1, 3))
    done = builder.response()
    assert done["status"] == "completed" and builder.text() == "hi"
    assert done["usage"]["total_tokens"] == 5 and done["usage"]["input_tokens_details"] == {"cached_tokens": 1}


def test_added_events_show_the_item_before_its_content() -> None:
    builder = ResponseBuilder({})
    added, part_added, delta = builder.on_text("x")
    assert added["item"]["content"] == [] and added["item"]["status"] == "in_progress"
    assert part_added["part"] == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert delta["delta"] == "x" and delta["item_id"] == added["item"]["id"]


def test_reasoning_then_text_are_two_items_closed_in_order() -> None:
    builder = ResponseBuilder({})
    events = [*builder.on_reasoning("think"), *builder.on_text("answer"), *builder.complete(Usage())]
    assert [item["type"] for item in builder.output] == ["reasoning", "message"]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert [(e["output_index"], e["item"]["type"]) for e in done] == [(0, "reasoning"), (1, "message")]
    assert builder.output[0]["summary"] == [{"type": "summary_text", "text": "think"}]


def test_an_empty_answer_still_has_a_message() -> None:
    builder = ResponseBuilder({})
    builder.complete(Usage())
    assert [(item["type"], item["content"][0]["text"]) for item in builder.output] == [("message", "")]


def test_an_answer_of_calls_has_no_empty_message() -> None:
    builder = ResponseBuilder({})
    builder.on_tool_call(ToolCall("c1", "f", "{}"))
    builder.complete(Usage())
    assert [item["type"] for item in builder.output] == ["function_call"]
    assert builder.calls() == [ToolCall("c1", "f", "{}")]


def test_a_call_closes_the_open_message() -> None:
    builder = ResponseBuilder({})
    builder.on_text("Let me check.")
    events = builder.on_tool_call(ToolCall("c1", "f", '{"a":1}'))
    assert types(events) == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert events[-1]["output_index"] == 1 and events[-1]["item"]["arguments"] == '{"a":1}'


def test_a_web_search_is_one_completed_item() -> None:
    events = ResponseBuilder({}).on_web_search(WebSearch({"type": "search", "query": "q"}))
    assert types(events)[1:4] == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    assert events[-1]["item"]["status"] == "completed" and events[-1]["item"]["action"]["query"] == "q"


def test_fail_from_a_failed_turn_and_from_an_api_error() -> None:
    builder = ResponseBuilder({})
    builder.on_text("part")
    events = builder.fail(Failed(FailureKind.RATE_LIMITED, "slow down"))
    assert types(events)[-1] == "response.failed" and builder.status == "failed"
    assert builder.error is not None and builder.error["code"] == "rate_limit_exceeded"
    assert builder.failure is not None and builder.failure.status == 429
    assert builder.output[0]["status"] == "completed"  # the partial message is closed, not left in progress
    other = ResponseBuilder({})
    other.fail(ApiError(502, "bad schema", code="invalid_output"))
    assert other.error == {"code": "server_error", "message": "bad schema"}


def test_end_cancelled_has_no_error_and_failed_has_one() -> None:
    cancelled = ResponseBuilder({})
    assert types(cancelled.end("cancelled", "ignored")) == ["response.cancelled"]
    assert cancelled.status == "cancelled" and cancelled.error is None
    failed = ResponseBuilder({})
    failed.end("failed", "lost its instance", "instance_gone")
    assert failed.error == {"code": "instance_gone", "message": "lost its instance"}
