"""Responses input items in every shape the SDKs send, and file parts (both endpoints)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from app.api.chat import to_messages as chat_messages
from app.api.files import file_part
from app.api.response_input import expand_references, item_type, to_messages
from app.errors import ApiError
from app.images import ImageRef, MessageDraft
from app.turn import ToolCall


def data(media_type: str, body: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(body).decode()}"


def test_an_earlier_output_sent_back_whole() -> None:
    """What `input += response.output` sends (the SDK's output models dumped), and what the Agents SDK's
    to_input_list() sends: reasoning with nulls, output_text with annotations and logprobs, status, phase."""
    raw = [
        {"role": "user", "content": "hi"},
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}], "content": None,
         "encrypted_content": None, "status": None},
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed", "phase": None,
         "content": [{"type": "output_text", "text": "Hello.", "annotations": [{"type": "url_citation", "url": "u",
                      "title": "t", "start_index": 0, "end_index": 1}], "logprobs": []},
                     {"type": "refusal", "refusal": "Not that."}]},
        {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "status": "completed"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
    ]  # fmt: skip
    drafts, listed = to_messages(raw)
    assert drafts[:2] == [MessageDraft("user", "hi"), MessageDraft("assistant", "Hello.\nNot that.")]
    assert drafts[2] == ToolCall("c1", "f", "{}")
    assert [item["type"] for item in listed] == ["message", "reasoning", "message", "function_call",
                                                 "function_call_output"]  # fmt: skip
    assert listed[1]["id"] == "rs_1" and listed[1]["summary"][0]["text"] == "hmm"  # listed, not replayed
    assert listed[2]["id"] == "msg_1" and listed[2]["content"][0]["text"] == "Hello.\nNot that."


def test_the_easy_and_the_typed_forms() -> None:
    raw = [
        {"role": "system", "content": [{"type": "input_text", "text": "be brief", "prompt_cache_breakpoint":
                                        {"mode": "explicit"}}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA==", "detail": "original"}]},
    ]  # fmt: skip
    drafts, _ = to_messages(raw)
    assert drafts == [
        MessageDraft("system", "be brief"),
        MessageDraft("user", "look", (ImageRef("data:image/png;base64,AA==", "input[1].content[1].image_url"),)),
    ]


def test_an_item_without_type() -> None:
    assert item_type({"id": "msg_1"}) == "item_reference"
    assert item_type({"role": "user", "content": "x"}) == "message"
    assert item_type({"id": "msg_1", "type": "item_reference"}) == "item_reference"


class Store:
    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        self.items = items

    async def find_item(self, owner: str, item_id: str) -> dict[str, Any] | None:
        return self.items.get(item_id) if owner == "me" else None


def test_references_are_resolved_for_their_owner_only() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]}
    store: Any = Store({"msg_1": message})
    raw = [{"role": "user", "content": "x"}, {"type": "item_reference", "id": "msg_1"}, {"id": "msg_1"}]
    assert asyncio.run(expand_references(raw, store, "me"))[1:] == [message, message]
    with pytest.raises(ApiError) as caught:
        asyncio.run(expand_references(raw, store, "someone else"))
    assert (caught.value.status, caught.value.param, caught.value.code) == (404, "input[1].id", "item_not_found")
    assert "msg_1" in caught.value.message


def test_a_text_file_becomes_text_of_its_message() -> None:
    part = {"type": "input_file", "filename": "notes.md", "file_data": data("text/markdown", "# Notes\nä".encode())}
    drafts, _ = to_messages([{"role": "user", "content": [{"type": "input_text", "text": "read"}, part]}])
    assert drafts[0] == MessageDraft("user", 'read\n<file name="notes.md">\n# Notes\nä\n</file>')
    bare = file_part({"filename": "a.json", "file_data": base64.b64encode(b'{"a": 1}').decode()}, "p", True)
    assert bare.text == '<file name="a.json">\n{"a": 1}\n</file>'
    plain = file_part({"file_data": "data:text/plain,hello%20there"}, "p", True)
    assert plain.text == '<file name="file">\nhello there\n</file>'


def test_an_image_file_becomes_an_image() -> None:
    given = file_part({"filename": "x.png", "file_data": data("image/png", b"png")}, "input[0].content[0]", True)
    assert given.image == ImageRef(data("image/png", b"png"), "input[0].content[0].file_data")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"file_id": "file-123"}, "Files API"),
        ({"file_url": "https://example.com/a.pdf"}, "not fetched"),
        ({"filename": "a.pdf", "file_data": data("application/pdf", b"%PDF-1.7")}, "application/pdf"),
        ({"filename": "a.bin", "file_data": data("application/octet-stream", b"\x00\xff")}, "not UTF-8 text"),
        ({"file_data": "%%%not base64"}, "neither a data URL nor base64"),
    ],
)
def test_what_cannot_reach_the_model_is_refused_by_name(spec: dict, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        to_messages([{"role": "user", "content": [{"type": "input_file", **spec}]}])
    assert caught.value.param == "input[0].content[0]" and words in caught.value.message


def test_chat_file_parts_and_messages_sent_back() -> None:
    part = {"type": "file", "file": {"filename": "a.txt", "file_data": data("text/plain", b"abc")}}
    raw = [
        {"role": "user", "content": [{"type": "text", "text": "see"}, part]},
        {"role": "assistant", "content": None, "refusal": "I can't.", "reasoning_content": "why", "annotations": []},
        {"role": "user", "content": "ok"},
    ]
    assert chat_messages(raw) == [
        MessageDraft("user", 'see\n<file name="a.txt">\nabc\n</file>'),
        MessageDraft("assistant", "I can't."),
        MessageDraft("user", "ok"),
    ]
    with pytest.raises(ApiError) as caught:
        chat_messages([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}])
    assert caught.value.param == "messages[0].content[0].file" and "Files API" in caught.value.message
