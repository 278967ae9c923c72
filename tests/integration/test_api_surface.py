"""Models, health, auth and request validation, as the openai SDK and plain HTTP see them."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.fakes.provider import FakeProvider
from tests.harness import FAKE_MODEL, RunningGateway

StartGateway = Callable[..., RunningGateway]
HELLO = [{"role": "user", "content": "hello"}]


def assert_envelope(body: dict, code: str | None = None, param: str | None = None) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    if param is not None:
        assert body["error"]["param"] == param


def test_models_list_has_the_configured_model_first_and_effort_aliases(gateway: RunningGateway) -> None:
    models = gateway.client().models.list()
    ids = [model.id for model in models.data]
    assert ids[0] == FAKE_MODEL
    assert f"{FAKE_MODEL} high" in ids
    assert all(model.object == "model" and model.owned_by and model.created > 0 for model in models.data)
    # the catalog Codex reports (`codex debug models`) is there too, each alias within the model's own efforts
    assert "gpt-5.5" in ids and "gpt-5.5 xhigh" in ids and "gpt-5.5 ultra" not in ids


def test_model_by_id(gateway: RunningGateway) -> None:
    assert gateway.client().models.retrieve(FAKE_MODEL).id == FAKE_MODEL
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().models.retrieve("no-such-model")
    assert_envelope(caught.value.response.json(), "model_not_found")


def test_unknown_model_is_a_404(gateway: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().chat.completions.create(model="gpt-imaginary", messages=HELLO)
    assert_envelope(caught.value.response.json(), "model_not_found", "model")


def test_health_and_ready(gateway: RunningGateway) -> None:
    with gateway.http() as http:
        assert http.get("/health").json() == {"status": "ok", "service": "codex-wrapper"}
        ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["codex_version"] == "0.169.0"


def test_auth_when_proxy_api_key_is_set(start_gateway: StartGateway) -> None:
    gateway = start_gateway(PROXY_API_KEY="sk-right")
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.client("sk-wrong").models.list()
    assert_envelope(caught.value.response.json(), "invalid_api_key")
    with gateway.http() as http:
        missing = http.get("/v1/models")
        assert missing.status_code == 401
        assert_envelope(missing.json(), "invalid_api_key")
        assert http.get("/health").status_code == 200  # liveness needs no key
    reply = gateway.client("sk-right").chat.completions.create(model=FAKE_MODEL, messages=HELLO)
    assert reply.choices[0].message.content == "pong"


def test_rate_limit_per_minute(start_gateway: StartGateway) -> None:
    gateway = start_gateway(RATE_LIMIT_PER_MINUTE="2")
    with gateway.http() as http:
        codes = [http.get("/v1/models").status_code for _ in range(3)]
        limited = http.get("/v1/models")
    assert codes == [200, 200, 429]
    assert int(limited.headers["retry-after"]) >= 1
    assert_envelope(limited.json(), "rate_limit_exceeded")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"tools": [{"type": "custom", "custom": {"name": "f"}}]}, "tools[0].type"),
        ({"functions": [{"description": "no name"}]}, "functions[0].name"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"frobnicate": True}, "frobnicate"),
    ],
)
def test_refused_fields_are_named(gateway: RunningGateway, extra: dict, param: str) -> None:
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json={"model": FAKE_MODEL, "messages": HELLO, **extra})
    assert response.status_code == 400
    assert_envelope(response.json(), param=param)


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
        ([{"role": "tool", "content": "hi", "tool_call_id": "x"}, {"role": "user", "content": "q"}], "messages"),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}],
            "messages[0].content[0]",
        ),
        ([{"role": "user", "content": 42}], "messages[0].content"),
    ],
)
def test_bad_messages_are_400(gateway: RunningGateway, messages: list, param: str) -> None:
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json={"model": FAKE_MODEL, "messages": messages})
    assert response.status_code == 400
    assert_envelope(response.json(), param=param)


def test_validation_and_json_errors_use_the_envelope(gateway: RunningGateway) -> None:
    with gateway.http() as http:
        missing = http.post("/v1/chat/completions", json={"messages": HELLO})
        broken = http.post("/v1/chat/completions", content=b'{"model": ', headers={"Content-Type": "application/json"})
        unknown_route = http.get("/v1/nothing")
    assert missing.status_code == 400
    assert_envelope(missing.json(), "missing_required_parameter", "model")
    assert broken.status_code == 400
    assert_envelope(broken.json(), "invalid_json")
    assert unknown_route.status_code == 404
    assert_envelope(unknown_route.json())


def test_sampling_fields_are_accepted_and_named(gateway: RunningGateway, provider: FakeProvider) -> None:
    sampling = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "seed": 7, "user": "u1", "logprobs": True}
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json={"model": FAKE_MODEL, "messages": HELLO, **sampling})
    assert response.status_code == 200
    assert set(response.headers["x-codex-ignored-params"].split(",")) == set(sampling)
    assert response.json()["choices"][0]["message"]["content"] == "pong"
    assert response.json()["choices"][0]["logprobs"] is None


def test_codex_missing_is_a_503_and_not_ready(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CODEX_PATH="/nonexistent/codex")
    with gateway.http() as http:
        ready = http.get("/ready")
        chat = http.post("/v1/chat/completions", json={"model": FAKE_MODEL, "messages": HELLO})
        models = http.get("/v1/models")
    assert ready.status_code == 503 and "CODEX_PATH" in ready.json()["reason"]
    assert chat.status_code == 503
    assert_envelope(chat.json(), "codex_unavailable")
    assert next(m["id"] for m in models.json()["data"]) == FAKE_MODEL  # the configured model is still served
