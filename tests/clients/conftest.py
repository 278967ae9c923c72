"""Real clients against the gateway (app-server engine, default settings) and the fake model.

Each client is called the way its own docs show; the fake model is steered by a `SCRIPT:<name>` marker in the
user's message (tests/fakes/provider.py), so a test scripts the model's side of a whole multi-step loop.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.provider import FakeProvider
from tests.harness import RunningGateway, run_gateway

# the clients' own network habits, off: tracing uploads (openai-agents), the model price list download (litellm)
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def client_gateway(
    codex_home: Path, workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """One gateway for every client test: the app-server engine with the server's defaults (agent mode)."""
    log = tmp_path_factory.mktemp("logs") / "gateway-clients.log"
    with run_gateway(codex_home, workdir, log, CODEX_ENGINE="app-server", CODEX_TIMEOUT="30") as running:
        yield running


@pytest.fixture
def base_url(client_gateway: RunningGateway) -> str:
    """What a client is told: the gateway's /v1."""
    return f"{client_gateway.base_url}/v1"


def requests_with(provider: FakeProvider, marker: str) -> list[dict[str, Any]]:
    """The model requests (as Codex sent them) of the conversation that carries `marker`."""
    return [body for body in provider.requests if marker in json.dumps(body)]


def function_outputs(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(call_id, output) of every function output a model request carries, in order."""
    return [
        (item["call_id"], str(item.get("output")))
        for item in body.get("input", [])
        if item.get("type") == "function_call_output"
    ]


def fresh(name: str) -> str:
    """A script name no other test uses (the tests on both engines share one fake provider and its records)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"
