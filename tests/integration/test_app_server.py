"""What only the app-server engine does: a supervised warm pool, real deltas, modes, declined server requests."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, REPO, RunningGateway, app_server_workers, wait_for

StartGateway = Callable[..., RunningGateway]


def test_each_upstream_delta_is_its_own_chunk(start_gateway: StartGateway, provider: FakeProvider) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server")
    deltas = [f"d{n} " for n in range(12)]
    marker = provider.script("many-deltas", Script(deltas=deltas))
    chunks = list(
        gateway.client().chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], stream=True
        )
    )
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert contents == deltas


def test_a_killed_worker_fails_its_turn_with_502_and_is_replaced(
    start_gateway: StartGateway, provider: FakeProvider
) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server", CODEX_APP_SERVER_WORKERS="1", CODEX_TIMEOUT="20")
    [worker] = app_server_workers(gateway.codex_home)
    marker = provider.script("hang-kill", Script(hang=True))
    outcome: dict[str, object] = {}

    def ask() -> None:
        try:
            gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
        except openai.APIStatusError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=ask)
    thread.start()
    assert wait_for(lambda: any(marker in json.dumps(b) for b in provider.requests))
    os.kill(worker, signal.SIGKILL)
    thread.join(20)
    error = outcome["error"]
    assert isinstance(error, openai.APIStatusError) and error.status_code == 502
    assert "app-server" in error.body["message"]
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "pong"
    assert app_server_workers(gateway.codex_home) != [worker]
    with gateway.http() as http:
        ready = http.get("/ready").json()
    assert ready["status"] == "ready" and ready["engine"] == "app-server"


def test_chat_mode_is_a_plain_model_and_agent_mode_has_the_shell(
    start_gateway: StartGateway, provider: FakeProvider
) -> None:
    gateway = start_gateway(CODEX_ENGINE="app-server", CODEX_MODE="chat")
    client = gateway.client()
    for mode in ("chat", "agent"):
        marker = provider.script(f"mode-{mode}", Script(deltas=["ok"]))
        extra = {} if mode == "chat" else {"x_codex": {"mode": "agent"}}
        client.chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], extra_body=extra
        )
        body = next(b for b in provider.requests if marker in json.dumps(b))
        tools = {tool.get("name") for tool in body.get("tools", [])}
        size = len(json.dumps(body["input"]))
        if mode == "chat":
            assert "exec_command" not in tools and size < 3000
        else:
            assert "exec_command" in tools and size > 10000


def test_a_server_request_is_declined_and_the_turn_goes_on(start_gateway: StartGateway, provider: FakeProvider) -> None:
    # Codex asks its client for user input only with this feature on; the gateway must decline, not hang
    features = {"features": {"default_mode_request_user_input": True}}
    gateway = start_gateway(codex_config=features, CODEX_ENGINE="app-server", CODEX_MODE="chat")
    options = [{"label": "A", "description": "first"}, {"label": "B", "description": "second"}]
    question = {"questions": [{"id": "q1", "header": "Pick", "question": "Which one?", "options": options}]}
    call = {"name": "request_user_input", "arguments": json.dumps(question)}
    marker = provider.script("ask-user", Script(tool_call=call, deltas=["went on"]))
    reply = gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
    assert reply.choices[0].message.content == "went on"
    outputs = [out for body in provider.requests if marker in json.dumps(body) for out in tool_outputs(body)]
    assert outputs  # Codex got an answer (the refusal) and reported back to the model
    assert "declined app-server request item/tool/requestUserInput" in gateway.log()


@pytest.mark.parametrize("mode", ["chat", "agent"])
def test_mode_is_validated(gateway: RunningGateway, mode: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(
            model=FAKE_MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"x_codex": {"mode": mode.upper()}},
        )
    assert caught.value.body["param"] == "x_codex.mode"


def test_a_pool_that_cannot_start_is_not_ready(
    start_gateway: StartGateway, tmp_path: Path, provider: FakeProvider
) -> None:
    """The real Codex for everything but `app-server` itself, which dies at once: /ready and requests say so."""
    real = REPO / "node_modules" / ".bin" / "codex"
    broken = tmp_path / "codex"
    broken.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "app-server" ] && [ "$2" != "generate-json-schema" ]; then echo "no app-server" >&2; exit 3; fi\n'
        f'exec "{real}" "$@"\n'
    )
    broken.chmod(0o755)
    gateway = start_gateway(CODEX_ENGINE="app-server", CODEX_PATH=str(broken), CODEX_TIMEOUT="3")
    with gateway.http() as http:
        ready = http.get("/ready")
        chat = http.post(
            "/v1/chat/completions", json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": "x"}]}
        )
    assert ready.status_code == 503 and "0/2 app-server workers ready" in ready.json()["reason"]
    assert chat.status_code == 503 and chat.json()["error"]["code"] == "codex_unavailable"
