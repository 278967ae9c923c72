"""Chat Completions through the gateway, the real Codex binary and the fake provider."""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script, last_user_text, request_text
from tests.harness import FAKE_MODEL, RunningGateway, wait_no_codex


def requests_with(provider: FakeProvider, marker: str) -> list[dict]:
    return [body for body in provider.requests if marker in json.dumps(body)]


def test_non_stream_reply_and_real_usage(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("hello", Script(deltas=["Hel", "lo ", "there"], input_tokens=42, output_tokens=5))
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": f"greet me {marker}"}]
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == FAKE_MODEL
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "Hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (42, 5, 47)
    assert reply.usage.prompt_tokens_details.cached_tokens == 3
    assert reply.usage.completion_tokens_details.reasoning_tokens == 2
    assert last_user_text(requests_with(provider, marker)[-1]) == f"greet me {marker}"


def test_stream_chunks_follow_the_openai_format(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("streamed", Script(deltas=["a", "b", "c"], input_tokens=9, output_tokens=3))
    stream = gateway.client().chat.completions.create(
        model=FAKE_MODEL,
        messages=[{"role": "user", "content": marker}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len({chunk.id for chunk in chunks}) == 1
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "abc"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 9


def test_history_and_system_prompt_reach_the_model(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("history", Script(deltas=["ok"]))
    gateway.client().chat.completions.create(
        model=FAKE_MODEL,
        messages=[
            {"role": "system", "content": "Always answer in French."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": [{"type": "text", "text": "Noted, Ada."}]},
            {"role": "user", "content": f"What is my name? {marker}"},
        ],
    )
    prompt = request_text(requests_with(provider, marker)[-1])
    order = [
        prompt.index(s) for s in ("Always answer in French.", "My name is Ada.", "Noted, Ada.", "What is my name?")
    ]
    assert order == sorted(order)


def test_a_300_kb_prompt_goes_through_stdin(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("big", Script(deltas=["read it"]))
    big = "x" * 300_000
    reply = gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": f"{big} {marker}"}]
    )
    assert reply.choices[0].message.content == "read it"
    assert big in last_user_text(requests_with(provider, marker)[-1])


def test_effort_alias_reaches_the_model(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("effort", Script(deltas=["thought"]))
    gateway.client().chat.completions.create(model=f"{FAKE_MODEL} high", messages=[{"role": "user", "content": marker}])
    body = requests_with(provider, marker)[-1]
    assert body["model"] == FAKE_MODEL
    assert body["reasoning"]["effort"] == "high"


def test_reasoning_effort_field_runs_as_the_models_nearest(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("effort-field", Script(deltas=["ok"]))
    client = gateway.client()
    client.chat.completions.create(
        model=FAKE_MODEL, reasoning_effort="low", messages=[{"role": "user", "content": marker}]
    )
    assert requests_with(provider, marker)[-1]["reasoning"]["effort"] == "low"
    raw = client.chat.completions.with_raw_response.create(  # the fake model offers low, medium and high only
        model=FAKE_MODEL, reasoning_effort="xhigh", messages=[{"role": "user", "content": marker}]
    )
    assert raw.headers["x-codex-adjusted-params"] == "reasoning_effort=xhigh->high"
    assert requests_with(provider, marker)[-1]["reasoning"]["effort"] == "high"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=FAKE_MODEL, reasoning_effort="extreme", messages=[{"role": "user", "content": marker}]
        )
    assert caught.value.body["param"] == "reasoning_effort"
    assert "none, minimal, low, medium, high, xhigh" in caught.value.body["message"]


def test_upstream_500_is_a_502_with_the_message(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("fail500", Script(status=500, error_message="kaboom"))
    before = len(requests_with(provider, marker))
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
    assert caught.value.status_code == 502
    error = caught.value.body
    assert error["code"] == "upstream_error" and error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    assert len(requests_with(provider, marker)) == before + 1  # Codex did not retry on its own


def test_upstream_429_is_a_429(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("fail429", Script(status=429, error_message="slow down"))
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
    assert caught.value.body["code"] == "upstream_rate_limited"
    assert "429" in caught.value.body["message"]


def test_failure_midway_through_a_stream_is_an_error_chunk(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("drop", Script(deltas=["partial", "never"], drop_after=1, reasoning=["hmm"]))
    status, lines = gateway.stream_chat_lines(marker)
    assert status == 200
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2].removeprefix("data: "))
    assert error["error"]["code"] in ("upstream_error", "codex_failed")
    assert wait_no_codex(gateway.codex_home) == []
