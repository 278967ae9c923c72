"""The Responses tool shapes coding agents send, through the real Codex with the openai SDK: a custom (freeform)
tool's call and its events, a namespace tool's call, additional_tools input items, client_metadata and a
server-run tool_search named as ignored, and the hosted web_search tool (off by default; cached where the
operator allows it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engines.app_server.dynamic_tools import wire_name
from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, RunningGateway, run_gateway

StartGateway = Callable[..., RunningGateway]
GRAMMAR = {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" /(.|\\n)*/'}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": GRAMMAR}
SLEEP = {"type": "function", "name": "sleep", "parameters": {"type": "object", "properties": {}}, "strict": False}
CLOCK = {"type": "namespace", "name": "clock", "description": "Time.", "tools": [SLEEP]}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch\n"
SEARCH = {"type": "search", "query": "codex wrapper"}


@pytest.fixture(scope="module")
def gateway(codex_home: Path, workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    log = tmp_path_factory.mktemp("logs") / "gateway-agent-shapes.log"
    settings = {"CODEX_ENGINE": "app-server", "CODEX_TIMEOUT": "30", "CODEX_CLIENT_WEB_SEARCH": "cached"}
    with run_gateway(codex_home, workdir, log, **settings) as running:
        yield running


def bodies(provider: FakeProvider, marker: str) -> list[dict[str, Any]]:
    return [body for body in provider.requests if marker in json.dumps(body)]


def test_custom_and_namespace_calls_round_trip_streamed(gateway: RunningGateway, provider: FakeProvider) -> None:
    calls = [
        [{"name": wire_name("apply_patch"), "arguments": json.dumps({"input": PATCH})}],
        [{"name": wire_name("clock.sleep"), "arguments": "{}"}],
    ]
    marker = provider.script("shapes-custom", Script(calls=calls, deltas=["patched"]))
    client = gateway.client()
    with client.responses.with_streaming_response.create(
        model=FAKE_MODEL,
        input=[
            {"type": "additional_tools", "role": "developer", "tools": [CLOCK]},
            {"role": "user", "content": f"{marker} patch it"},
        ],
        tools=[PATCH_TOOL, {"type": "tool_search"}],  # run by the server: there is none here
        store=False,
        stream=True,
        extra_body={"client_metadata": {"turn_id": "t1"}},
    ) as raw:
        ignored = raw.headers["x-codex-ignored-params"].split(",")
        events = list(raw.parse())  # the SDK's own event types: every event must parse
    assert {"client_metadata", "tools.tool_search", "tools.apply_patch.format"} <= set(ignored)
    kinds = [event.type for event in events]
    assert "response.custom_tool_call_input.delta" in kinds and "response.custom_tool_call_input.done" in kinds
    final = events[-1].response
    call = final.output[-1]
    assert (call.type, call.name, call.input) == ("custom_tool_call", "apply_patch", PATCH)
    history: list[Any] = [
        {"type": "additional_tools", "role": "developer", "tools": [CLOCK]},
        {"role": "user", "content": f"{marker} patch it"},
        call.model_dump(exclude_none=True),
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Success. A a.txt"},
    ]
    second = client.responses.create(model=FAKE_MODEL, input=history, tools=[PATCH_TOOL], store=False)
    sleep = second.output[-1]
    assert (sleep.type, sleep.name, sleep.namespace) == ("function_call", "sleep", "clock")
    history += [
        sleep.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": sleep.call_id, "output": "slept"},
    ]
    third = client.responses.create(model=FAKE_MODEL, input=history, tools=[PATCH_TOOL], store=False)
    assert third.output_text == "patched"
    last = bodies(provider, marker)[-1]
    assert tool_outputs(last) == ["Success. A a.txt", "slept"]  # the model saw both results
    replayed = [item for item in last["input"] if item.get("type") == "function_call"]
    assert [item["name"] for item in replayed] == [wire_name("apply_patch"), wire_name("clock.sleep")]
    assert json.loads(replayed[0]["arguments"]) == {"input": PATCH}


def test_web_search_runs_cached_and_its_calls_are_output_items(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("shapes-web", Script(web_search=SEARCH, deltas=["found it"]))
    raw = gateway.client().responses.with_raw_response.create(
        model=FAKE_MODEL, input=f"{marker} search", tools=[{"type": "web_search"}]
    )
    response = raw.parse()
    assert raw.headers["x-codex-adjusted-params"] == "tools.web_search.external_web_access=true->false"
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert response.output[0].action.query == "codex wrapper" and response.output_text == "found it"
    sent = [tool for tool in bodies(provider, marker)[0].get("tools", []) if tool.get("type") == "web_search"]
    assert sent and sent[0].get("external_web_access") is False


def test_web_search_is_ignored_and_named_by_default(start_gateway: StartGateway, provider: FakeProvider) -> None:
    marker = provider.script("shapes-web-off", Script(deltas=["no search"]))
    gateway = start_gateway(CODEX_ENGINE="app-server", CODEX_TIMEOUT="30", codex_config={"web_search": "disabled"})
    raw = gateway.client().responses.with_raw_response.create(
        model=FAKE_MODEL, input=f"{marker} search", tools=[{"type": "web_search", "external_web_access": False}]
    )
    assert raw.parse().output_text == "no search"
    assert raw.headers["x-codex-ignored-params"] == "tools.web_search"
    assert not [tool for tool in bodies(provider, marker)[0].get("tools", []) if tool.get("type") == "web_search"]


def test_web_search_on_the_exec_engine(start_gateway: StartGateway, provider: FakeProvider) -> None:
    marker = provider.script("shapes-web-exec", Script(web_search=SEARCH, deltas=["found"]))
    gateway = start_gateway(CODEX_ENGINE="exec", CODEX_TIMEOUT="30", CODEX_CLIENT_WEB_SEARCH="live")
    response = gateway.client().responses.create(
        model=FAKE_MODEL, input=f"{marker} search", tools=[{"type": "web_search", "external_web_access": False}]
    )
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert response.output[0].action.query == "codex wrapper" and response.output_text == "found"
