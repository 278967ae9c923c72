"""JSON Schemas from a key holder, as attacks through the real Codex (issue 20: findings 1, 5 and 9).

A schema `$ref` must never read a file or fetch a URL; a schema must never stall the event loop (`/health` keeps
answering while the hostile request is in flight); odd schemas are 400s, never 5xx.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.engines.app_server.dynamic_tools import wire_name
from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway, run_gateway

StartGateway = Callable[..., RunningGateway]
HEALTH_DEADLINE = 3.0  # generous: /health answers in milliseconds; the stalls this guards against took 5 s and more


@pytest.fixture(scope="module")
def tools_gateway(
    codex_home: Path, workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """The app-server engine (client functions need it), default schema limits."""
    log = tmp_path_factory.mktemp("logs") / "gateway-security-schemas.log"
    with run_gateway(codex_home, workdir, log, CODEX_ENGINE="app-server", CODEX_TIMEOUT="60") as running:
        yield running


class FetchRecorder:
    """An internal HTTP service on 127.0.0.1 that answers with a schema and records every fetch."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:
                recorder.fetched.append(self.path)
                body = json.dumps({"type": "object", "description": "INTERNAL-METADATA-TOKEN"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def internal_service() -> Iterator[FetchRecorder]:
    recorder = FetchRecorder()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[Path, str]:
    """A Codex login as the operator's CODEX_HOME holds it, with a secret that must never come back."""
    secret = f"sk-proj-{uuid.uuid4().hex}"
    path = tmp_path / "operator-codex-home" / "auth.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"OPENAI_API_KEY": secret, "tokens": {"refresh_token": secret}}))
    return path, secret


def reached_model(provider: FakeProvider, marker: str) -> bool:
    return any(marker in json.dumps(body) for body in provider.requests)


def post(gateway: RunningGateway, path: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    with gateway.http(timeout=timeout) as http:
        return http.post(path, json=body)


def health_while(gateway: RunningGateway, hostile: Callable[[], httpx.Response]) -> tuple[httpx.Response, list[float]]:
    """Send `hostile` in the background and ask /health until it is answered; every /health must answer within
    HEALTH_DEADLINE. Returns the hostile answer and the /health latencies taken while it was in flight."""
    latencies: list[float] = []
    pool = ThreadPoolExecutor(1)
    future: Future[httpx.Response] = pool.submit(hostile)
    try:
        with httpx.Client(base_url=gateway.base_url, timeout=HEALTH_DEADLINE) as http:
            while not future.done():
                started = time.monotonic()
                try:
                    status = http.get("/health").status_code
                except httpx.TimeoutException:
                    pytest.fail(f"/health did not answer within {HEALTH_DEADLINE} s while the hostile request ran")
                latencies.append(time.monotonic() - started)
                assert status == 200
        return future.result(), latencies
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# --- finding 1: a $ref reads no file and fetches no URL --------------------------------------------------------------


def test_a_file_ref_in_a_function_never_reads_the_operators_login(
    tools_gateway: RunningGateway, provider: FakeProvider, secret_file: tuple[Path, str]
) -> None:
    path, secret = secret_file
    marker = provider.script("schema-file-ref", Script(calls=[[{"name": "lookup", "arguments": '{"q": "x"}'}]]))
    tool = {"type": "function", "name": "lookup", "parameters": {"$ref": f"file://{path}#/nope"}}  # strict default
    reply = post(tools_gateway, "/v1/responses", {"model": FAKE_MODEL, "input": marker, "tools": [tool]})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == "tools[0].parameters" and error["code"] == "invalid_function_parameters"
    assert "$ref" in error["message"] and "inside the schema" in error["message"]
    assert secret not in reply.text and secret not in tools_gateway.log()
    assert not reached_model(provider, marker)  # refused when the request arrived, not when the model answered


def test_an_http_ref_in_a_strict_chat_function_fetches_nothing(
    tools_gateway: RunningGateway, provider: FakeProvider, internal_service: FetchRecorder
) -> None:
    marker = provider.script("schema-http-ref", Script(calls=[[{"name": "meta", "arguments": "{}"}]]))
    parameters = {"$ref": internal_service.url("/latest/meta-data/iam/security-credentials")}
    tool = {"type": "function", "function": {"name": "meta", "parameters": parameters, "strict": True}}
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}], "tools": [tool]}
    reply = post(tools_gateway, "/v1/chat/completions", body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "tools[0].function.parameters"
    assert "INTERNAL-METADATA-TOKEN" not in reply.text
    assert internal_service.fetched == [] and not reached_model(provider, marker)


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_an_http_ref_in_an_output_schema_fetches_nothing(
    gateway: RunningGateway, provider: FakeProvider, internal_service: FetchRecorder, endpoint: str
) -> None:
    """On both engines (the exec engine made a blind fetch and a 500)."""
    marker = provider.script(f"schema-out-ref-{endpoint}", Script(deltas=['{"a": 1}']))
    schema = {"type": "object", "properties": {"a": {"$ref": internal_service.url("/internal/secret.json")}}}
    if endpoint == "chat":
        fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
        body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}], "response_format": fmt}
        reply, param = post(gateway, "/v1/chat/completions", body), "response_format.json_schema.schema"
    else:
        text = {"format": {"type": "json_schema", "name": "out", "schema": schema}}
        reply, param = (
            post(gateway, "/v1/responses", {"model": FAKE_MODEL, "input": marker, "text": text}),
            ("text.format.schema"),
        )
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param, reply.text
    assert internal_service.fetched == [] and not reached_model(provider, marker)


def test_refs_inside_the_document_still_work(tools_gateway: RunningGateway, provider: FakeProvider) -> None:
    """Local `$ref`s, `$defs` and recursion are followed as before; only what leaves the document is refused."""
    tree = {
        "type": "object",
        "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},  # noqa: E501
        "properties": {"root": {"$ref": "#/$defs/node"}, "code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "required": ["root", "code"],
    }  # fmt: skip
    good, bad = '{"root": {"kids": [{"kids": []}]}, "code": "ABC"}', '{"root": {"kids": [{"kids": 5}]}, "code": "ABC"}'
    ok = provider.script("schema-local-ok", Script(calls=[[{"name": "tree", "arguments": good}]]))
    tool = {"type": "function", "name": "tree", "parameters": tree}
    reply = post(tools_gateway, "/v1/responses", {"model": FAKE_MODEL, "input": ok, "tools": [tool]})
    assert reply.status_code == 200 and reply.json()["output"][0]["arguments"] == good
    wrong = provider.script("schema-local-bad", Script(calls=[[{"name": "tree", "arguments": bad}]]))
    reply = post(tools_gateway, "/v1/responses", {"model": FAKE_MODEL, "input": wrong, "tools": [tool]})
    assert reply.status_code == 502 and "root/kids/0/kids" in reply.json()["error"]["message"]


# --- finding 5: no schema stalls the event loop -----------------------------------------------------------------


def test_a_backtracking_pattern_does_not_stall_the_gateway(
    tools_gateway: RunningGateway, provider: FakeProvider
) -> None:
    """`^(a+)+$` against 30 a's and a '!' took minutes on Python's re, on the event loop; RE2 is linear."""
    arguments = json.dumps({"s": "a" * 30 + "!"})
    marker = provider.script("schema-redos", Script(calls=[[{"name": "f", "arguments": arguments}]], delay=0.2))
    parameters = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters, "strict": True}}
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}], "tools": [tool]}
    reply, latencies = health_while(tools_gateway, lambda: post(tools_gateway, "/v1/chat/completions", body))
    assert reply.status_code == 502 and "does not match '^(a+)+$'" in reply.json()["error"]["message"]
    assert latencies and max(latencies) < HEALTH_DEADLINE


def test_doubling_defs_are_refused_by_their_subschemas(gateway: RunningGateway, provider: FakeProvider) -> None:
    """A 1.4 KB output schema whose `$defs` double at each level (20 levels: a million subschemas to validate)."""
    marker = provider.script("schema-doubling", Script(deltas=['{"v": "x"}']))
    defs: dict[str, Any] = {"d0": {"type": "string"}}
    for level in range(1, 21):
        defs[f"d{level}"] = {"anyOf": [{"$ref": f"#/$defs/d{level - 1}"}, {"$ref": f"#/$defs/d{level - 1}"}]}
    schema = {"type": "object", "$defs": defs, "properties": {"v": {"$ref": "#/$defs/d20"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}], "response_format": fmt}
    reply, _ = health_while(gateway, lambda: post(gateway, "/v1/chat/completions", body))
    assert reply.status_code == 400 and "CODEX_SCHEMA_MAX_SUBSCHEMAS" in reply.json()["error"]["message"]
    assert not reached_model(provider, marker)


def test_checking_past_the_time_limit_is_a_clean_400_while_health_answers(
    start_gateway: StartGateway, provider: FakeProvider
) -> None:
    """With the subschema limit lifted, the same doubling schema is stopped by the time limit, off the loop."""
    gateway = start_gateway(
        CODEX_ENGINE="exec", CODEX_SCHEMA_MAX_SUBSCHEMAS="100000000", CODEX_SCHEMA_TIMEOUT_SECONDS="2"
    )
    marker = provider.script("schema-slow-check", Script(deltas=['{"v": "x"}']))
    defs: dict[str, Any] = {"d0": {"type": "string"}}
    for level in range(1, 23):
        defs[f"d{level}"] = {"anyOf": [{"$ref": f"#/$defs/d{level - 1}"}, {"$ref": f"#/$defs/d{level - 1}"}]}
    schema = {"type": "object", "$defs": defs, "properties": {"v": {"$ref": "#/$defs/d22"}}}
    text = {"format": {"type": "json_schema", "name": "out", "schema": schema}}
    body = {"model": FAKE_MODEL, "input": marker, "text": text}
    reply, latencies = health_while(gateway, lambda: post(gateway, "/v1/responses", body))
    assert reply.status_code == 400 and "took longer than 2 s" in reply.json()["error"]["message"]
    assert len(latencies) >= 2 and max(latencies) < HEALTH_DEADLINE  # /health answered during the check


def test_an_answer_too_costly_to_check_is_a_clean_502(tools_gateway: RunningGateway, provider: FakeProvider) -> None:
    """A recursive schema is allowed, but the model's answer can make checking it exponential: stopped at the
    time limit (CODEX_SCHEMA_TIMEOUT_SECONDS, 5 s) while /health answers."""
    schema = {"type": "object", "properties": {"t": {"$ref": "#/$defs/t"}}, "$defs": {
        "t": {"type": "array", "minItems": 1, "items": {"anyOf": [{"$ref": "#/$defs/t"}, {"$ref": "#/$defs/t"}]}}
    }}  # fmt: skip
    answer = json.dumps({"t": json.loads("[" * 40 + "]" * 40)})
    marker = provider.script("schema-costly-answer", Script(deltas=[answer]))
    text = {"format": {"type": "json_schema", "name": "out", "schema": schema}}
    body = {"model": FAKE_MODEL, "input": marker, "text": text}
    reply, latencies = health_while(tools_gateway, lambda: post(tools_gateway, "/v1/responses", body))
    assert reply.status_code == 502 and reply.json()["error"]["code"] == "schema_mismatch"
    assert "CODEX_SCHEMA_TIMEOUT_SECONDS" in reply.json()["error"]["message"]
    assert len(latencies) >= 2 and max(latencies) < HEALTH_DEADLINE


def test_a_huge_function_schema_is_refused_without_a_stall(
    tools_gateway: RunningGateway, provider: FakeProvider
) -> None:
    """1.7 MB of function parameters (check_schema took 6.4 s on the event loop): over CODEX_SCHEMA_MAX_BYTES."""
    marker = provider.script("schema-huge", Script())
    properties = {f"p{n}": {"type": "string", "description": "d" * 300} for n in range(5000)}
    tool = {"type": "function", "name": "big", "parameters": {"type": "object", "properties": properties}}
    body = {"model": FAKE_MODEL, "input": marker, "tools": [tool]}
    assert len(json.dumps(tool)) > 1_500_000
    reply, _ = health_while(tools_gateway, lambda: post(tools_gateway, "/v1/responses", body))
    assert reply.status_code == 400 and "CODEX_SCHEMA_MAX_BYTES" in reply.json()["error"]["message"]
    assert reply.json()["error"]["param"] == "tools[0].parameters" and not reached_model(provider, marker)


# --- finding 9: odd schemas are 400s, colliding names are mapped -------------------------------------------------


def deep(levels: int) -> dict[str, Any]:
    """A schema `levels` objects deep: twice as many JSON levels (445: about 900 in the request body)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize("where", ["tools", "response_format"])
def test_a_900_level_schema_is_a_400(tools_gateway: RunningGateway, where: str) -> None:
    body: dict[str, Any] = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    if where == "tools":
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": deep(445)}}]
        param = "tools[0].function.parameters"
    else:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "o", "schema": deep(445)}}
        param = "response_format.json_schema.schema"
    reply = post(tools_gateway, "/v1/chat/completions", body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param
    assert "CODEX_SCHEMA_MAX_DEPTH" in reply.json()["error"]["message"]


def test_a_local_ref_to_nowhere_is_a_400(gateway: RunningGateway, provider: FakeProvider) -> None:
    marker = provider.script("schema-nowhere", Script(deltas=['{"a": 1}']))
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}
    text = {"format": {"type": "json_schema", "name": "out", "schema": schema}}
    reply = post(gateway, "/v1/responses", {"model": FAKE_MODEL, "input": marker, "text": text})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "text.format.schema"
    assert "'#/$defs/missing'" in reply.json()["error"]["message"] and not reached_model(provider, marker)


def test_a_pattern_re2_cannot_run_is_a_400(tools_gateway: RunningGateway) -> None:
    parameters = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(?=a)(a)\\1$"}}}
    tool = {"type": "function", "name": "f", "parameters": parameters}
    reply = post(tools_gateway, "/v1/responses", {"model": FAKE_MODEL, "input": "hi", "tools": [tool]})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "tools[0].parameters"
    assert "RE2" in reply.json()["error"]["message"]


def test_two_names_that_map_to_one_codex_name_both_work(tools_gateway: RunningGateway, provider: FakeProvider) -> None:
    odd, lookalike = "weather.lookup", wire_name("weather.lookup")  # the second is the first's stand-in
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}} for name in (odd, lookalike)
    ]
    probe = provider.script("schema-names-probe", Script(deltas=["ok"]))
    messages = [{"role": "user", "content": probe}]
    reply = post(tools_gateway, "/v1/chat/completions", {"model": FAKE_MODEL, "messages": messages, "tools": tools})
    assert reply.status_code == 200, reply.text
    offered = [t.get("name") for t in [b for b in provider.requests if probe in json.dumps(b)][-1]["tools"]]
    odd_wire = next(name for name in offered if name and name.startswith("weather_lookup_") and name != lookalike)
    assert lookalike in offered
    wire_calls = [{"name": odd_wire, "arguments": "{}"}, {"name": lookalike, "arguments": "{}"}]
    marker = provider.script("schema-names-call", Script(calls=[wire_calls]))
    messages = [{"role": "user", "content": marker}]
    reply = post(tools_gateway, "/v1/chat/completions", {"model": FAKE_MODEL, "messages": messages, "tools": tools})
    assert reply.status_code == 200, reply.text
    called = [call["function"]["name"] for call in reply.json()["choices"][0]["message"]["tool_calls"]]
    assert called == [odd, lookalike]
