"""The Vercel AI SDK (Node), as its docs show: generateText with tools and a multi-step stop condition
(tests/clients/vercel/loop.mjs), on the Responses model (the SDK's default) and the chat model."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import function_outputs, requests_with
from tests.fakes.provider import FakeProvider, Script

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
