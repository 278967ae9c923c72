"""Background responses through the openai SDK, the real Codex and the fake provider: answered at once, polled
to completion, streams dropped and resumed, cancel mid-turn (the model request closed, no process left), ownership,
a gateway stopped or killed mid-run, and cancel from a second gateway sharing a real Redis."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.responses import Response

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway, run_gateway, wait_for, wait_no_codex, write_codex_home
from tests.integration.test_scale import KEYS, two_gateways
from tests.redis_server import RedisServer

TERMINAL = ("response.completed", "response.failed", "response.cancelled", "response.incomplete")


def requests_with(provider: FakeProvider, marker: str) -> int:
    return sum(marker in json.dumps(body) for body in provider.requests)


def reached_model(provider: FakeProvider, marker: str, before: int) -> bool:
    """A request with `marker` beyond the `before` already seen (the session's provider serves both engines)."""
    return requests_with(provider, marker) > before


def poll(client: openai.OpenAI, response_id: str, until: tuple[str, ...], timeout: float = 30) -> Response:
    seen: list[Response] = []

    def ended() -> bool:
        seen.append(client.responses.retrieve(response_id))
        return seen[-1].status in until

    assert wait_for(ended, timeout), f"still {seen[-1].status}"
    return seen[-1]


def events_of(stream: object) -> list[dict]:
    return [event.model_dump() for event in stream]  # type: ignore[attr-defined]


def test_answers_at_once_and_is_polled_to_completion(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("bg-poll", Script(deltas=["slow ", "answer"], delay=0.5))
    client = gateway.client()
    created = client.responses.create(model=FAKE_MODEL, input=f"work {marker}", background=True)
    assert created.status in ("queued", "in_progress") and created.background is True and created.output == []
    done = poll(client, created.id, ("completed",))
    assert done.output_text == "slow answer" and done.usage is not None and done.usage.input_tokens == 11
    with client.responses.stream(response_id=created.id) as stream:  # the SDK's helper replays it whole
        assert stream.get_final_response().output_text == "slow answer"
    # it reads as a normal stored response: continued, and its items referenced
    marker2 = provider.script("bg-next", Script(deltas=["next"]))
    nxt = client.responses.create(model=FAKE_MODEL, input=f"go on {marker2}", previous_response_id=created.id)
    assert nxt.status == "completed"  # (exec sends the history as one prompt: the fake model obeys its first marker)
    body = [b for b in provider.requests if marker2 in json.dumps(b)][-1]
    assert "slow answer" in json.dumps(body)
    referenced = client.responses.create(
        model=FAKE_MODEL,
        input=[{"type": "item_reference", "id": done.output[-1].id}, {"role": "user", "content": "ok"}],
    )
    assert referenced.status == "completed"
    assert client.responses.input_items.list(created.id).data[0].content[0].text.startswith("work")


def test_a_dropped_stream_resumes_without_a_lost_or_repeated_event(
    gateway: RunningGateway, provider: FakeProvider
) -> None:
    words = [f"w{n} " for n in range(8)]
    marker = provider.script("bg-resume", Script(deltas=words, delay=0.2))
    client = gateway.client()
    first: list[dict] = []
    stream = client.responses.create(model=FAKE_MODEL, input=marker, background=True, stream=True)
    for event in stream:
        first.append(event.model_dump())
        if len(first) == 2:
            break
    stream.close()  # the client goes away; the turn goes on
    response_id = first[0]["response"]["id"]
    rest = events_of(client.responses.retrieve(response_id, stream=True, starting_after=first[-1]["sequence_number"]))
    events = first + rest
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[0]["response"]["status"] == "queued"
    assert events[-1]["type"] == "response.completed"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "".join(words)
    # the whole stream again, from the store, once the response has ended
    again = events_of(client.responses.retrieve(response_id, stream=True))
    assert again == events
    last = events[-1]["sequence_number"]
    assert events_of(client.responses.retrieve(response_id, stream=True, starting_after=last)) == []
    assert client.responses.retrieve(response_id).output_text == "".join(words)


def test_cancel_mid_turn_closes_the_model_request_and_leaves_no_process(
    gateway: RunningGateway, provider: FakeProvider
) -> None:
    marker = provider.script("bg-cancel", Script(hang=True))
    client = gateway.client()
    before = requests_with(provider, marker)
    created = client.responses.create(model=FAKE_MODEL, input=marker, background=True)
    assert wait_for(lambda: reached_model(provider, marker, before), 20)
    closed = provider.connections_closed
    assert client.responses.retrieve(created.id).status == "in_progress"
    with pytest.raises(openai.BadRequestError) as caught:  # no answer to continue from yet
        client.responses.create(model=FAKE_MODEL, input="next", previous_response_id=created.id)
    assert caught.value.body["param"] == "previous_response_id"
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled" and cancelled.error is None
    assert wait_for(lambda: provider.connections_closed > closed, 10), "the model request was not closed"
    assert wait_no_codex(gateway.codex_home, 10) == []
    assert client.responses.retrieve(created.id).status == "cancelled"
    events = events_of(client.responses.retrieve(created.id, stream=True))
    assert events[-1]["type"] == "response.cancelled" and events[-1]["response"]["status"] == "cancelled"
    assert client.responses.cancel(created.id).status == "cancelled"  # again: the same answer


def test_what_cannot_be_cancelled_or_run_in_background(gateway: RunningGateway) -> None:
    client = gateway.client()
    foreground = client.responses.create(model=FAKE_MODEL, input="plain")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(foreground.id)
    assert "background" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        client.responses.retrieve(foreground.id, stream=True)
    finished = client.responses.create(model=FAKE_MODEL, input="quick", background=True)
    poll(client, finished.id, ("completed",))
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(finished.id)
    assert "Cannot cancel a completed response" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=FAKE_MODEL, input="x", background=True, store=False)
    assert caught.value.body["param"] == "background"
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_nothing")


def test_only_the_key_that_created_it_sees_or_cancels_it(start_gateway, provider: FakeProvider) -> None:
    gateway = start_gateway(PROXY_API_KEY="sk-one,sk-two", CODEX_TIMEOUT="20")
    marker = provider.script("bg-owner", Script(hang=True))
    one, two = gateway.client("sk-one"), gateway.client("sk-two")
    created = one.responses.create(model=FAKE_MODEL, input=marker, background=True)
    for call in (
        lambda: two.responses.retrieve(created.id),
        lambda: two.responses.cancel(created.id),
        lambda: two.responses.retrieve(created.id, stream=True),
        lambda: two.responses.delete(created.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert one.responses.retrieve(created.id).status in ("queued", "in_progress")
    assert one.responses.cancel(created.id).status == "cancelled"
    assert wait_no_codex(gateway.codex_home, 10) == []


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_gateway_stopped_mid_run_leaves_no_response_in_progress(
    how: str, provider: FakeProvider, workdir: Path, tmp_path: Path
) -> None:
    home = write_codex_home(tmp_path / "home", provider.base_url)
    settings = {"CODEX_STORE_URL": str(tmp_path / "store.sqlite3"), "CODEX_INSTANCE_ID": "gw-1", "CODEX_TIMEOUT": "60"}
    marker = provider.script(f"bg-stop-{how}", Script(hang=True))
    with run_gateway(home, workdir, tmp_path / "first.log", **settings) as first:
        before = requests_with(provider, marker)
        created = first.client().responses.create(model=FAKE_MODEL, input=marker, background=True)
        assert wait_for(lambda: reached_model(provider, marker, before), 20)
        first.process.send_signal(getattr(signal, how))
        first.process.wait(30)
    with run_gateway(home, workdir, tmp_path / "second.log", **settings) as second:
        client = second.client()
        stopped = client.responses.retrieve(created.id)
        assert stopped.status == "failed" and stopped.error is not None and "stopped" in stopped.error.message
        events = events_of(client.responses.retrieve(created.id, stream=True))
        assert events[-1]["type"] == "response.failed"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert wait_no_codex(home, 10) == []


def test_cancel_from_a_second_gateway_on_a_shared_redis(
    provider: FakeProvider, workdir: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    with two_gateways(provider, workdir, tmp_path, redis_server.url) as (a, b):
        marker = provider.script("bg-remote", Script(hang=True))
        before = requests_with(provider, marker)
        created = a.client(KEYS[0]).responses.create(model=FAKE_MODEL, input=marker, background=True)
        assert wait_for(lambda: reached_model(provider, marker, before), 20)
        closed = provider.connections_closed
        other = b.client(KEYS[0])
        # another instance reads the store's copy, written in batches: it turns in_progress a moment after the runner's
        assert wait_for(lambda: other.responses.retrieve(created.id).status == "in_progress", 10)
        with pytest.raises(openai.NotFoundError):
            b.client(KEYS[1]).responses.cancel(created.id)
        follower = other.responses.retrieve(created.id, stream=True, starting_after=0)
        asked = time.monotonic()
        cancelled = other.responses.cancel(created.id)
        assert cancelled.status == "cancelled"
        assert time.monotonic() - asked < 5  # the runner saw the flag with its next heartbeat
        assert wait_for(lambda: provider.connections_closed > closed, 10)
        assert wait_no_codex(a.codex_home, 10) == []
        events = events_of(follower)
        assert events[0]["sequence_number"] == 1 and events[-1]["type"] == "response.cancelled"
        assert a.client(KEYS[0]).responses.retrieve(created.id).status == "cancelled"


def test_background_turns_wait_in_their_own_bounded_queue(start_gateway, provider: FakeProvider) -> None:
    gateway = start_gateway(CODEX_MAX_PARALLEL_REQUESTS="1", CODEX_MAX_BACKGROUND_QUEUE="1", CODEX_TIMEOUT="30")
    marker = provider.script("bg-queue", Script(hang=True))
    client = gateway.client()
    running = client.responses.create(model=FAKE_MODEL, input=marker, background=True)
    assert wait_for(lambda: client.responses.retrieve(running.id).status == "in_progress", 20)
    waiting = client.responses.create(model=FAKE_MODEL, input=f"second {marker}", background=True)
    assert client.responses.retrieve(waiting.id).status == "queued"
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=FAKE_MODEL, input="third", background=True)
    with httpx.Client(base_url=gateway.base_url, timeout=10) as http:
        metrics = http.get("/metrics").text
    assert "codex_wrapper_background_responses 2.0" in metrics and "codex_wrapper_queue_depth 1.0" in metrics
    assert client.responses.cancel(waiting.id).status == "cancelled"  # a queued one is cancelled without running
    assert client.responses.cancel(running.id).status == "cancelled"
    assert wait_no_codex(gateway.codex_home, 10) == []
    with httpx.Client(base_url=gateway.base_url, timeout=10) as http:
        metrics = http.get("/metrics").text
    assert "codex_wrapper_background_responses 0.0" in metrics


def test_a_background_turn_has_its_own_deadline(start_gateway, provider: FakeProvider) -> None:
    gateway = start_gateway(CODEX_TIMEOUT="60", CODEX_BACKGROUND_TIMEOUT="2")
    marker = provider.script("bg-deadline", Script(hang=True))
    client = gateway.client()
    created = client.responses.create(model=FAKE_MODEL, input=marker, background=True)
    ended = poll(client, created.id, ("failed",))
    assert ended.error is not None and "CODEX_BACKGROUND_TIMEOUT=2" in ended.error.message
    assert wait_no_codex(gateway.codex_home, 10) == []
