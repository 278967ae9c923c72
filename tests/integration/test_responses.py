"""/v1/responses with the official SDK, the real Codex binary and the fake provider (both engines)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script, request_text
from tests.harness import FAKE_MODEL, RunningGateway, run_gateway, write_codex_home

StartGateway = Callable[..., RunningGateway]
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def body_with(provider: FakeProvider, marker: str) -> dict:
    return [b for b in provider.requests if marker in json.dumps(b)][-1]


def test_create_with_text_input(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("resp-text", Script(deltas=["Hel", "lo"], input_tokens=20, output_tokens=4))
    response = gateway.client().responses.create(model=FAKE_MODEL, input=f"hi {marker}", metadata={"k": "v"})
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.output_text == "Hello"
    assert response.model == FAKE_MODEL and response.metadata == {"k": "v"}
    assert response.usage is not None and response.usage.input_tokens == 20 and response.usage.total_tokens == 24
    assert response.usage.input_tokens_details.cached_tokens == 3
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    message = response.output[-1]
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert message.content[0].type == "output_text"


def test_message_lists_history_and_instructions_reach_the_model(
    gateway: RunningGateway, provider: FakeProvider
) -> None:
    marker = provider.script("resp-list", Script(deltas=["ok"]))
    gateway.client().responses.create(
        model=FAKE_MODEL,
        instructions="Answer like a pirate.",
        input=[
            {"role": "system", "content": "System rule."},
            {"role": "user", "content": "First question."},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "First answer."}]},
            {"role": "user", "content": [{"type": "input_text", "text": f"Second question. {marker}"}]},
        ],
    )
    text = request_text(body_with(provider, marker))
    expected = ["Answer like a pirate.", "System rule.", "First question.", "First answer.", "Second question."]
    positions = [text.index(part) for part in expected]
    assert positions[1:] == sorted(positions[1:]) and positions[0] >= 0


@pytest.mark.parametrize("how", ["stream_helper", "create_stream"])
def test_streaming_events_are_exact_and_numbered(gateway: RunningGateway, provider: FakeProvider, how: str) -> None:
    marker = provider.script("resp-stream", Script(deltas=["a", "b"]))
    client = gateway.client()
    if how == "stream_helper":
        with client.responses.stream(model=FAKE_MODEL, input=marker) as stream:
            events = list(stream)
            final = stream.get_final_response()
        assert final.output_text == "ab"
    else:
        events = list(client.responses.create(model=FAKE_MODEL, input=marker, stream=True))
    types = [event.type for event in events]
    # the app-server engine streams each upstream delta, exec sends the answer in one: collapse the deltas
    collapsed = [t for i, t in enumerate(types) if t != "response.output_text.delta" or types[i - 1] != t]
    assert collapsed == TEXT_EVENTS
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "ab"
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert events[-1].response.output_text == "ab"


def test_reasoning_is_its_own_output_item(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("resp-reason", Script(deltas=["x"], reasoning=["thinking ", "hard"]))
    events = list(gateway.client().responses.create(model=FAKE_MODEL, input=marker, stream=True))
    types = [event.type for event in events]
    reasoning_part = types[: types.index("response.output_item.done") + 1]
    collapsed = [t for n, t in enumerate(reasoning_part) if t != reasoning_part[n - 1] or not t.endswith(".delta")]
    assert collapsed == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "thinking hard"


def test_a_chain_of_three_turns(gateway: RunningGateway, provider: FakeProvider) -> None:
    client = gateway.client()
    first = client.responses.create(model=FAKE_MODEL, input="one: my name is Ada")
    second = client.responses.create(model=FAKE_MODEL, input="two: what is 2+2", previous_response_id=first.id)
    marker = provider.script("resp-chain", Script(deltas=["three done"]))
    third = client.responses.create(model=FAKE_MODEL, input=f"three {marker}", previous_response_id=second.id)
    assert third.previous_response_id == second.id and third.output_text == "three done"
    text = request_text(body_with(provider, marker))
    for part in ("one: my name is Ada", "two: what is 2+2", "three"):
        assert part in text
    assert text.count("pong") == 2  # both earlier answers


def test_retrieve_delete_and_input_items(gateway: RunningGateway) -> None:
    client = gateway.client()
    created = client.responses.create(
        model=FAKE_MODEL, input=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    )
    assert client.responses.retrieve(created.id).output_text == created.output_text
    items = client.responses.input_items.list(created.id, order="asc")
    assert [item.content[0].text for item in items.data] == ["a", "b"]
    assert [item.content[0].text for item in client.responses.input_items.list(created.id).data] == ["b", "a"]
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.delete(created.id)
    assert set(caught.value.body) == {"message", "type", "param", "code"}


def test_store_false_is_not_kept(gateway: RunningGateway) -> None:
    client = gateway.client()
    created = client.responses.create(model=FAKE_MODEL, input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=FAKE_MODEL, input="y", previous_response_id=created.id)
    assert caught.value.body["param"] == "previous_response_id"


def test_keys_cannot_see_each_others_responses(start_gateway: StartGateway) -> None:
    gateway = start_gateway(PROXY_API_KEY="sk-alice,sk-bob")
    alice, bob = gateway.client("sk-alice"), gateway.client("sk-bob")
    created = alice.responses.create(model=FAKE_MODEL, input="secret")
    assert alice.responses.retrieve(created.id).id == created.id
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.input_items.list(created.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model=FAKE_MODEL, input="x", previous_response_id=created.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(created.id)
    assert alice.responses.retrieve(created.id).id == created.id


def test_responses_survive_a_restart_and_are_shared_by_instances(
    provider: FakeProvider, workdir: Path, tmp_path: Path
) -> None:
    home = write_codex_home(tmp_path / "home", provider.base_url)
    data = {"CODEX_DATA_DIR": str(tmp_path / "shared-data")}
    with run_gateway(home, workdir, tmp_path / "a.log", **data) as first:
        created = first.client().responses.create(model=FAKE_MODEL, input="remember me")
    with (
        run_gateway(home, workdir, tmp_path / "b.log", **data) as second,
        run_gateway(home, workdir, tmp_path / "c.log", **data) as third,
    ):
        assert second.client().responses.retrieve(created.id).output_text == "pong"
        marker = provider.script("resp-restart", Script(deltas=["still here"]))
        follow = third.client().responses.create(model=FAKE_MODEL, input=marker, previous_response_id=created.id)
        assert follow.output_text == "still here"
        assert "remember me" in request_text(body_with(provider, marker))
        assert second.client().responses.retrieve(follow.id).previous_response_id == created.id


def test_upstream_failures(gateway: RunningGateway, provider: FakeProvider) -> None:
    client = gateway.client()
    marker = provider.script("resp-500", Script(status=500))
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model=FAKE_MODEL, input=marker)
    assert caught.value.status_code == 502
    drop = provider.script("resp-drop", Script(deltas=["part", "never"], drop_after=1, reasoning=["r"]))
    events = list(client.responses.create(model=FAKE_MODEL, input=drop, stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed" and events[-1].response.error.message
