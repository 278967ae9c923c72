"""The Codex CLI (the pinned 0.169) as a client: a second CODEX_HOME whose only provider is the gateway runs
`codex exec` and `codex exec resume`, for a custom provider's model (fake-model) and for the catalogue families
that shape their requests differently (gpt-5.5: a freeform `apply_patch` custom tool, `tool_search`; gpt-6-sol:
its tools in an `additional_tools` input item, namespaces holding a custom `exec`). The gateway runs its own Codex
against the fake model, which calls the client's tools under the names the gateway offers them by; the client
runs them in its own workspace and the model sees the results. Nothing of the client's requests is refused.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from app.engines.app_server.dynamic_tools import wire_name
from tests.clients.conftest import fresh, requests_with
from tests.fakes.provider import FakeProvider, Script
from tests.harness import REPO, RunningGateway, clean_environment, run_gateway

CODEX = REPO / "node_modules" / ".bin" / "codex"
KEY = "sk-codex-cli-client"
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from the patch\n*** End Patch\n"


@pytest.fixture(scope="module")
def cli_gateway(codex_home: Path, workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The gateway the CLI talks to: the app-server engine, behind an API key, with cached web search allowed."""
    log = tmp_path_factory.mktemp("logs") / "gateway-codex-cli.log"
    settings = {"CODEX_ENGINE": "app-server", "CODEX_TIMEOUT": "30", "PROXY_API_KEY": KEY}
    with run_gateway(codex_home, workdir, log, CODEX_CLIENT_WEB_SEARCH="cached", **settings) as gw:
        yield gw


def client_home(root: Path, base_url: str, model: str) -> Path:
    """A CODEX_HOME for the client with nothing but a provider entry pointing at the gateway (docs/API.md)."""
    home = root / "client-home"
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "model": model,
        "model_provider": "gw",
        "model_providers": {
            "gw": {
                "name": "Codex-Wrapper",
                "base_url": f"{base_url}/v1",
                "wire_api": "responses",
                "env_key": "CODEX_WRAPPER_KEY",
                "request_max_retries": 0,
                "stream_max_retries": 0,
            }
        },
    }
    (home / "config.toml").write_text(tomli_w.dumps(config))
    return home


def codex(home: Path, workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`codex exec` of the client, in its workspace (workspace-write: its commands and patches may change it)."""
    env = clean_environment(CODEX_HOME=str(home), CODEX_WRAPPER_KEY=KEY)
    env.pop("OPENAI_API_KEY", None)
    command = [str(CODEX), "exec", "--skip-git-repo-check", "-C", str(workspace), "-s", "workspace-write", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=150, cwd=workspace)


def outputs(body: dict[str, Any]) -> list[str]:
    return [str(item.get("output")) for item in body.get("input", []) if item.get("type") == "function_call_output"]


def responses_served(gateway: RunningGateway) -> list[int]:
    """The status of every Responses request the gateway has answered (its request log)."""
    events = [json.loads(line) for line in gateway.log().splitlines() if line.startswith('{"event":"request"')]
    return [event["status"] for event in events if event.get("endpoint") == "/v1/responses"]


Calls = list[list[dict[str, Any]]]


def run_family(
    model: str, calls: Calls, root: Path, gateway: RunningGateway, fake: FakeProvider, **script: Any
) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """Turn 1 (`codex exec`) runs the scripted calls to a final answer; turn 2 (`codex exec resume --last`) answers
    with the whole history, which the client replays (store: false). Returns the workspace and the model requests
    of both turns."""
    workspace = root / "workspace"
    workspace.mkdir()
    home = client_home(root, gateway.base_url, model)
    before = len(responses_served(gateway))
    first, second = fresh(f"cli-{model}"), fresh(f"cli-{model}-resume")
    fake.script(first, Script(calls=calls, deltas=["all done"], **script))
    fake.script(second, Script(deltas=["resumed"]))
    turn1 = codex(home, workspace, f"SCRIPT:{first} make the files")
    assert turn1.returncode == 0, turn1.stderr[-3000:]
    assert "all done" in turn1.stdout
    turn2 = codex(home, workspace, "resume", "--last", f"SCRIPT:{second} and now?")
    assert turn2.returncode == 0, turn2.stderr[-3000:]
    assert "resumed" in turn2.stdout
    assert responses_served(gateway)[before:] == [200] * (len(calls) + 2)  # every step of both turns, none refused
    return workspace, requests_with(fake, first), requests_with(fake, second)


def offered(body: dict[str, Any]) -> set[str]:
    """The names of the tools a model request offers (at the top, in namespaces, in additional_tools items)."""
    tools = list(body.get("tools") or [])
    tools += [
        tool for item in body.get("input", []) if item.get("type") == "additional_tools" for tool in item["tools"]
    ]
    tools += [inner for tool in tools if tool.get("type") == "namespace" for inner in tool["tools"]]
    return {str(tool.get("name")) for tool in tools}


def exec_call(command: str) -> dict[str, Any]:
    return {"name": wire_name("exec_command"), "arguments": json.dumps({"cmd": command})}


def test_custom_provider_model_round_trips_exec_command_and_resumes(
    cli_gateway: RunningGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    """With reasoning summaries and a (cached) web search before the answer: the client replays both in turn 2."""
    calls = [[exec_call("echo from-exec | tee exec.txt")]]
    search = {"type": "search", "query": "codex wrapper"}
    workspace, turn1, turn2 = run_family(
        "fake-model", calls, tmp_path, cli_gateway, provider, reasoning=["thinking"], web_search=search
    )
    assert (workspace / "exec.txt").read_text().strip() == "from-exec"
    sent = [tool for tool in turn1[0].get("tools", []) if tool.get("type") == "web_search"]
    assert sent and sent[0].get("external_web_access") is False  # the client asked for cached search
    assert any("from-exec" in output for output in outputs(turn1[-1]))  # the model saw the command's output
    # the client's namespace tool (multi_agent_v1) is offered under its qualified name; its web_search is not
    assert {wire_name("multi_agent_v1.spawn_agent"), wire_name("exec_command")} <= offered(turn1[0])
    assert any("from-exec" in output for output in outputs(turn2[-1]))  # turn 2 replays turn 1's call


def test_gpt_5_5_round_trips_tool_search_and_the_freeform_apply_patch(
    cli_gateway: RunningGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    patch = {"name": wire_name("apply_patch"), "arguments": json.dumps({"input": PATCH})}
    search = {"name": wire_name("tool_search"), "arguments": json.dumps({"query": "calendar"})}
    calls = [[search], [exec_call("echo from-exec | tee exec.txt")], [patch]]
    workspace, turn1, turn2 = run_family("gpt-5.5", calls, tmp_path, cli_gateway, provider)
    assert (workspace / "hello.txt").read_text() == "hello from the patch\n"
    results = outputs(turn1[-1])  # the client ran its own tool search (nothing deferred: no tools found)
    assert len(results) == 3 and results[0] == "No tools found."
    assert "from-exec" in results[1] and "hello.txt" in results[2]
    tool = next(t for t in turn1[0]["tools"] if t.get("name") == wire_name("apply_patch"))
    assert tool["parameters"]["required"] == ["input"] and "lark grammar" in json.dumps(tool)
    replayed = [item for item in turn2[-1]["input"] if item.get("type") == "function_call"]
    assert [json.loads(item["arguments"]).get("input") for item in replayed][-1] == PATCH


def nested(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A code-mode model's call of a client tool: Codex's own `exec` running JavaScript that calls it."""
    source = f"const r = await tools.{wire_name(tool)}({json.dumps(arguments)}); text(JSON.stringify(r));"
    return {"name": "exec", "namespace": "functions", "input": source}


def test_gpt_6_sol_tools_of_additional_tools_items(
    cli_gateway: RunningGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    """gpt-6-sol's tools come in an additional_tools item (namespaces, a custom `exec`); the gateway's Codex,
    itself in code mode for this model, offers them inside its `exec` JavaScript tool."""
    calls = [[nested("clock.sleep", {"duration_ms": 1})], [nested("functions.exec", {"input": 'text("from-js")'})]]
    _, turn1, turn2 = run_family("gpt-6-sol", calls, tmp_path, cli_gateway, provider)
    results = outputs(turn1[-1])
    assert len(results) == 2 and "from-js" in results[1]
    assert len(outputs(turn2[-1])) == 2
