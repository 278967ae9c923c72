"""Structured outputs, visible reasoning and stop sequences, through both engines."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway

StartGateway = Callable[..., RunningGateway]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


def body_with(provider: FakeProvider, marker: str) -> dict:
    return [b for b in provider.requests if marker in json.dumps(b)][-1]


def test_chat_json_schema_reaches_the_model_and_comes_back(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("schema-ok", Script(deltas=['{"city": "Oslo", ', '"population": 700000}']))
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL,
        messages=[{"role": "user", "content": marker}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA, "strict": True}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Oslo", "population": 700000}
    sent = body_with(provider, marker)["text"]["format"]
    assert sent["type"] == "json_schema" and sent["schema"]["properties"] == SCHEMA["properties"]


def test_responses_json_schema_too(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("schema-resp", Script(deltas=['{"city": "Rome", "population": 2}']))
    response = gateway.client().responses.create(
        model=FAKE_MODEL,
        input=marker,
        text={"format": {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}},
    )
    assert json.loads(response.output_text)["city"] == "Rome"
    assert response.text.format.type == "json_schema"
    assert body_with(provider, marker)["text"]["format"]["type"] == "json_schema"


@pytest.mark.parametrize(
    ("answer", "code"),
    [('{"city": "Oslo"', "invalid_json_output"), ('{"city": "Oslo", "population": "many"}', "schema_mismatch")],
)
def test_an_answer_that_breaks_the_schema_is_a_502(
    gateway: RunningGateway, provider: FakeProvider, answer: str, code: str
) -> None:
    marker = provider.script(f"schema-bad-{code}", Script(deltas=[answer]))
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], response_format=fmt
        )
    assert caught.value.status_code == 502 and caught.value.body["code"] == code


def test_json_object_mode(gateway: RunningGateway, provider: FakeProvider) -> None:
    good = provider.script("json-object", Script(deltas=['{"ok": true}']))
    client = gateway.client()
    reply = client.chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": good}], response_format={"type": "json_object"}
    )
    assert json.loads(reply.choices[0].message.content or "") == {"ok": True}
    assert "valid JSON object" in json.dumps(body_with(provider, good)["input"])
    with pytest.raises(openai.APIStatusError) as caught:  # the default script answers "pong"
        client.chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"}
        )
    assert caught.value.status_code == 502


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_schema", "json_schema": {"name": "bad name!", "schema": SCHEMA}},
        {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object", "properties": 5}}},
        {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "array"}}},
        {"type": "json_schema"},
    ],
)
def test_invalid_schemas_are_400(gateway: RunningGateway, fmt: dict) -> None:
    with gateway.http() as http:
        response = http.post(
            "/v1/chat/completions",
            json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": "x"}], "response_format": fmt},
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("response_format")


def test_reasoning_is_streamed_and_returned(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("reasoning-chat", Script(deltas=["answer"], reasoning=["step one, ", "step two"]))
    client = gateway.client()
    chunks = list(
        client.chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], stream=True)
    )
    thinking = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert thinking == "step one, step two"
    reply = client.chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
    assert reply.choices[0].message.reasoning_content == "step one, step two"  # type: ignore[attr-defined]


def test_hidden_reasoning_is_not_sent_and_not_asked_for(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("reasoning-hidden", Script(deltas=["answer"], reasoning=["secret thoughts"]))
    client = gateway.client()
    hide = {"x_codex": {"hide_reasoning": True}}
    chunks = list(
        client.chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], stream=True, extra_body=hide
        )
    )
    assert "secret thoughts" not in json.dumps([c.model_dump() for c in chunks])
    response = client.responses.create(model=FAKE_MODEL, input=marker, extra_body=hide)
    assert [item.type for item in response.output] == ["message"]
    assert body_with(provider, marker)["reasoning"].get("summary") in (None, "none")
