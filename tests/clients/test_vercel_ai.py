"""The Vercel AI SDK (Node), as its docs show: generateText with tools and a multi-step stop condition
(tests/clients/vercel/loop.mjs), on the Responses model (the SDK's default) and the chat model (app-server
engine); two-turn chats with generateText, streamText and generateObject (chat.mjs, both engines)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import fresh, function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script
from tests.harness import RunningGateway

PACKAGE = Path(__file__).parent / "vercel"
STEPS = [
    [{"name": "weather", "arguments": '{"location":"Paris"}'}],
    [{"name": "time", "arguments": '{"location":"Paris"}'}, {"name": "weather", "arguments": '{"location":"Rome"}'}],
]


def run_loop(base_url: str, prompt: str, api: str) -> dict:
    node = shutil.which("node")
    assert node is not None and (PACKAGE / "node_modules" / "ai").is_dir(), "run `make test` (it installs the SDK)"
    done = subprocess.run(
        [node, "loop.mjs", base_url, prompt, api], cwd=PACKAGE, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_generate_text_with_tools_and_steps(base_url: str, provider: FakeProvider, api: str) -> None:
    marker = provider.script(f"vercel-{api}", Script(calls=STEPS, deltas=["Sunny ", "at noon."]))
    result = run_loop(base_url, f"What is the weather and time in Paris and Rome? {marker}", api)
    assert result["text"] == "Sunny at noon." and result["steps"] == 3
    assert result["toolCalls"] == ["weather", "time", "weather"]
    outputs = [json.loads(output) for _, output in function_outputs(requests_with(provider, marker)[-1])]
    assert outputs == [
        {"location": "Paris", "temperature": 21},
        {"location": "Paris", "time": "12:00"},
        {"location": "Rome", "temperature": 21},
    ]


# Multi-turn chats (tests/clients/vercel/chat.mjs): each turn's response.messages appended to the history, as the
# AI SDK docs show; a gpt-5.x id, so the SDK treats it as the reasoning model it is, reasoning summaries asked for.
GPT5 = "gpt-5.5"
ANSWER = '{"city":"Paris","celsius":21}'


def run_chat(base_url: str, api: str, how: str, store: bool, prompts: list[str]) -> dict:
    node = shutil.which("node")
    assert node is not None and (PACKAGE / "node_modules" / "ai").is_dir(), "run `make test` (it installs the SDK)"
    argv = [node, "chat.mjs", base_url, GPT5, api, how, "true" if store else "false", *prompts]
    done = subprocess.run(argv, cwd=PACKAGE, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("api", "how", "store"),
    [
        ("responses", "generate", True),  # the default provider, openai(id): turn 2 sends item_reference items
        ("responses", "stream", True),
        ("responses", "object", True),
        ("responses", "generate", False),  # store: false, and the SDK adds include: reasoning.encrypted_content
        ("responses", "stream", False),
        ("chat", "generate", True),
        ("chat", "stream", True),
    ],
)
def test_a_chat_for_two_turns(gateway: RunningGateway, provider: FakeProvider, api: str, how: str, store: bool) -> None:
    marker = provider.script(fresh(f"vercel-chat-{api}-{how}"), Script(deltas=[ANSWER], reasoning=["zq-note"]))
    result = run_chat(f"{gateway.base_url}/v1", api, how, store, [f"Weather? {marker}", f"And now? {marker}"])
    first, second = result["turns"]
    assert first["text"] == ANSWER
    assert second.get("text", json.dumps(second.get("object"), separators=(",", ":"))) == ANSWER
    if api == "responses":
        assert first["reasoning"] == second["reasoning"] == "zq-note"
        # store on: the earlier reasoning and answer as references; off: the answer itself (reasoning without
        # encrypted content is left out by the SDK, with a warning)
        earlier = ["item_reference", "item_reference"] if store else ["assistant"]
        assert second["sent"] == ["user", *earlier, "user"]
    asked = requests_with(provider, marker)
    assert len(asked) == 2
    history = json.dumps(asked[-1]["input"])
    assert "Weather?" in history and json.dumps(ANSWER)[1:-1] in history and "zq-note" not in history
