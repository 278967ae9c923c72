"""What clients send by default, through the official SDK, the real Codex and the fake model (both engines):
earlier output sent back whole, item references, efforts and verbosities a model lacks, include values and the
other fields the OpenAI API accepts."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway

GPT5 = "gpt-5.5"  # in Codex's catalog: efforts low..xhigh, text verbosity supported; served by the fake provider


def bodies(provider: FakeProvider, marker: str) -> list[dict[str, Any]]:
    return [body for body in provider.requests if marker in json.dumps(body)]


def header_entries(response: Any, name: str) -> set[str]:
    value = response.headers.get(name)
    return set(value.split(",")) if value else set()


def test_the_sdk_loop_that_sends_the_output_back(gateway: RunningGateway, provider: FakeProvider) -> None:
    """`input += response.output`, three turns, reasoning summaries on: the reasoning items go back too."""
    marker = provider.script("inputs-loop", Script(deltas=["Answer."], reasoning=["private ", "notes"]))
    client = gateway.client()
    conversation: list[Any] = []
    for turn in range(3):
        conversation.append({"role": "user", "content": f"question {turn} {marker}"})
        response = client.responses.create(model=FAKE_MODEL, input=conversation, reasoning={"summary": "auto"})
        assert [item.type for item in response.output] == ["reasoning", "message"]
        assert response.output_text == "Answer."
        conversation += response.output
    last = json.dumps(bodies(provider, marker)[-1]["input"])
    assert last.count("Answer.") == 2 and "question 0" in last  # the earlier answers reach the model
    assert "private notes" not in last  # reasoning summaries are accepted, not replayed
    listed = client.responses.input_items.list(response.id, order="asc").data
    assert [item.type for item in listed].count("reasoning") == 2


def test_item_references_resolve_against_the_store(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("inputs-refs", Script(deltas=["Paris is sunny."], reasoning=["hmm"]))
    client = gateway.client()
    first = client.responses.create(
        model=FAKE_MODEL,
        input=[{"type": "message", "id": "msg_mine_1", "role": "user", "content": f"weather? {marker}"}],
    )
    reasoning_id, message_id = (item.id for item in first.output)
    second = client.responses.create(
        model=FAKE_MODEL,
        input=[
            {"type": "item_reference", "id": "msg_mine_1"},  # an input item of an earlier request
            {"type": "item_reference", "id": reasoning_id},
            {"id": message_id},  # a reference without its type, as the API reads it
            {"role": "user", "content": f"and tomorrow? {marker}"},
        ],
    )
    assert second.output_text == "Paris is sunny."
    seen = json.dumps(bodies(provider, marker)[-1]["input"])
    assert "weather?" in seen and "Paris is sunny." in seen and "and tomorrow?" in seen
    listed = client.responses.input_items.list(second.id, order="asc").data
    assert [item.id for item in listed[:3]] == ["msg_mine_1", reasoning_id, message_id]
    kept_out = client.responses.create(model=FAKE_MODEL, input="not kept", store=False)
    for unknown in ("msg_nowhere", kept_out.output[-1].id):
        with pytest.raises(openai.NotFoundError) as caught:
            client.responses.create(model=FAKE_MODEL, input=[{"type": "item_reference", "id": unknown}])
        assert caught.value.body["param"] == "input[0].id" and unknown in caught.value.body["message"]
        assert caught.value.body["code"] == "item_not_found"


@pytest.mark.parametrize("stream", [False, True])
def test_efforts_a_model_lacks_run_as_the_nearest(
    gateway: RunningGateway, provider: FakeProvider, stream: bool
) -> None:
    marker = provider.script(f"inputs-effort-{stream}", Script(deltas=["ok"]))
    with gateway.http() as http:
        body = {"model": GPT5, "input": marker, "reasoning": {"effort": "none"}, "stream": stream}
        response = http.post("/v1/responses", json=body)
        assert response.status_code == 200
        assert header_entries(response, "x-codex-adjusted-params") == {"reasoning.effort=none->low"}
        if not stream:
            assert response.json()["reasoning"]["effort"] == "low"
        assert bodies(provider, marker)[-1]["reasoning"]["effort"] == "low"
        chat = {"model": GPT5, "messages": [{"role": "user", "content": marker}], "reasoning_effort": "max"}
        response = http.post("/v1/chat/completions", json={**chat, "stream": stream})
        assert response.status_code == 200
        assert header_entries(response, "x-codex-adjusted-params") == {"reasoning_effort=max->xhigh"}
        assert bodies(provider, marker)[-1]["reasoning"]["effort"] == "xhigh"
        codex = {**chat, "reasoning_effort": None, "x_codex": {"reasoning_effort": "minimal"}}
        response = http.post("/v1/chat/completions", json=codex)
        assert header_entries(response, "x-codex-adjusted-params") == {"x_codex.reasoning_effort=minimal->low"}
        response = http.post("/v1/responses", json={**body, "reasoning": {"effort": "galactic"}})
        assert response.status_code == 400 and response.json()["error"]["param"] == "reasoning.effort"


def test_verbosity_reaches_the_models_that_take_it(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("inputs-verbosity", Script(deltas=["ok"]))
    with gateway.http() as http:
        response = http.post("/v1/responses", json={"model": GPT5, "input": marker, "text": {"verbosity": "high"}})
        assert response.status_code == 200 and "x-codex-ignored-params" not in response.headers
        assert response.json()["text"]["verbosity"] == "high"
        assert bodies(provider, marker)[-1]["text"]["verbosity"] == "high"
        chat = {"model": GPT5, "messages": [{"role": "user", "content": marker}], "verbosity": "medium"}
        assert http.post("/v1/chat/completions", json=chat).status_code == 200
        assert bodies(provider, marker)[-1]["text"]["verbosity"] == "medium"
        # Codex sends no verbosity to a model its catalog does not mark for one: named, not pretended
        response = http.post("/v1/chat/completions", json={**chat, "model": FAKE_MODEL})
        assert header_entries(response, "x-codex-ignored-params") == {"verbosity"}
        assert "text" not in bodies(provider, marker)[-1]
        response = http.post("/v1/responses", json={"model": GPT5, "input": marker, "text": {"verbosity": "loud"}})
        assert response.status_code == 400 and response.json()["error"]["param"] == "text.verbosity"


INCLUDABLE = [
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
    "reasoning.encrypted_content", "message.output_text.logprobs",
]  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_fields_clients_send_by_default(gateway: RunningGateway, stream: bool) -> None:
    fields = {
        "include": INCLUDABLE,
        "store": False,
        "truncation": "auto",
        "prompt_cache_key": "user-42",
        "prompt_cache_retention": "24h",
        "prompt_cache_options": {"ttl": "30m"},
        "safety_identifier": "hash-42",
        "service_tier": "auto",
        "metadata": {"app": "test"},
        "user": "u-42",
        "parallel_tool_calls": True,
        "stream_options": {"include_obfuscation": True} if stream else None,
        "context_management": [{"type": "compaction", "compact_threshold": 1000}],
        "image": {"context_compression": "auto"},
        "access_programs": {"cyber": "standard"},
        "moderation": {"model": "omni-moderation-latest", "policy": {"input": {"mode": "score"}}},
        "reasoning": {"effort": "medium", "summary": "auto", "context": "all_turns", "mode": "pro"},
    }
    with gateway.http() as http:
        response = http.post("/v1/responses", json={"model": FAKE_MODEL, "input": "hi", "stream": stream, **fields})
        assert response.status_code == 200, response.text
        ignored = header_entries(response, "x-codex-ignored-params")
        assert ignored == {
            "include=reasoning.encrypted_content", "include=message.output_text.logprobs", "truncation",
            "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "safety_identifier",
            "service_tier", "user", "context_management", "image", "access_programs", "moderation",
            "reasoning.mode", *(["stream_options.include_obfuscation"] if stream else []),
        }  # fmt: skip
        assert header_entries(response, "x-codex-adjusted-params") == {"reasoning.context=all_turns->current_turn"}
        bad = http.post("/v1/responses", json={"model": FAKE_MODEL, "input": "hi", "include": ["everything"]})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "include[0]"
        block = {"model": "m", "policy": {"output": {"mode": "block"}}}
        refused = http.post("/v1/responses", json={"model": FAKE_MODEL, "input": "hi", "moderation": block})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "moderation"


def test_a_not_stored_response_says_so(gateway: RunningGateway) -> None:
    client = gateway.client()
    response = client.responses.create(model=FAKE_MODEL, input="hi", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=FAKE_MODEL, input="again", previous_response_id=response.id)
    assert caught.value.body["code"] == "previous_response_not_found"
