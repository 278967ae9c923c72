"""Every code block the docs mark as an example runs, as written, against a gateway on the fake model.

A block is an example when the line before its fence is `<!-- example -->`; `<!-- example: start -->` marks a
block that starts gateways of its own (SCALING's by-hand recipe), whose examples then run against them. The only
changes made to a block: the gateway's address (`127.0.0.1:8000`, and the recipe's ports and Redis) and
`make run` → `python -m app serve` (what it runs once `make install` is done). Python blocks of one document
run in order in one interpreter (a later block uses the `client` of an earlier one); sh blocks run in bash with
`set -euo pipefail`, and curl fails on an error status or an error inside a 200 answer (a stream's).
Each document's Japanese version shows the same examples (its strings translated), and they run as well.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import REPO, clean_environment, free_port, run_gateway, wait_for, write_codex_home
from tests.redis_server import RedisServer

DOCS = ("README.md", "docs/API.md", "docs/TOOLS.md", "docs/SCALING.md")
BOTH = tuple(doc for english in DOCS for doc in (english, english.removesuffix(".md") + ".ja.md"))
EXAMPLE = re.compile(r"^<!-- example(?:: (\w+))? -->\n```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCS_KEY = "sk-docs-examples"
README_ADDRESS = "127.0.0.1:8000"
# Fails the block on an HTTP error status, and on an error a 200 answer carries (a chat stream's error chunk, a
# Responses stream's response.failed); prints the answer as curl would.
BASH_PRELUDE = r"""set -euo pipefail
curl() {
  local out
  out=$(command curl --fail-with-body "$@") || { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out"
  if grep -qE '"error": ?\{|^event: response\.failed' <<<"$out"; then echo "an error in the answer" >&2; return 1; fi
}
"""
# Runs a document's python blocks in order in one namespace; a traceback names the document and the line.
PYTHON_RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for block in json.load(sys.stdin):
    exec(compile(block["code"], block["where"], "exec"), namespace)
"""


@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    kind: str  # "" (runs against the gateway) or "start" (starts gateways)
    language: str  # python, sh
    code: str

    @property
    def where(self) -> str:
        return f"{self.doc} line {self.line}"


def examples(doc: str) -> list[Example]:
    text = (REPO / doc).read_text()
    found = []
    for match in EXAMPLE.finditer(text):
        line = text.count("\n", 0, match.start(3)) - 1  # so that a traceback's line n is the doc's line + n
        found.append(Example(doc, line, match[1] or "", match[2], match[3]))
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_marker_marks_a_block_and_the_japanese_doc_shows_as_many(doc: str) -> None:
    japanese = doc.removesuffix(".md") + ".ja.md"
    for name in (doc, japanese):
        text = (REPO / name).read_text()
        assert text.count("<!-- example") == len(examples(name)) > 0, f"{name}: a marker not right before a ```"
        assert all(e.language in ("python", "sh") for e in examples(name)), f"{name}: examples are python or sh"
        python = text.count("\n```python\n")
        assert python == sum(e.language == "python" for e in examples(name)), f"{name}: a python block is no example"
    shown = [(e.kind, e.language, len(e.code.splitlines())) for e in examples(doc)]
    assert shown == [(e.kind, e.language, len(e.code.splitlines())) for e in examples(japanese)], japanese


def instance(schema: dict[str, Any]) -> Any:
    """The smallest value that matches a simple JSON Schema (what the docs' schemas use)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: instance(sub) for name, sub in schema.get("properties", {}).items()}
    return {"string": "Paris", "integer": 1, "number": 1.5, "boolean": True, "array": [], "null": None}[kind]


class DocsProvider(FakeProvider):
    """The fake model, answering as the docs' examples expect: JSON that fits a requested schema, and a call of
    the examples' `get_weather` function, then an answer once its output is back."""

    def pick(self, body: dict[str, Any]) -> tuple[Script, int]:
        script, served = super().pick(body)
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            return Script(deltas=[json.dumps(instance(fmt.get("schema") or {}))]), served
        if any(tool.get("name") == "get_weather" for tool in body.get("tools", [])):
            call = {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}
            answer = f"It is {json.loads(tool_outputs(body)[-1]).get('sky', '?')}." if tool_outputs(body) else ""
            return Script(calls=[[call]], deltas=[answer or "pong"]), served
        return script, served


@pytest.fixture(scope="module")
def docs_provider() -> Iterator[DocsProvider]:
    provider = DocsProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def docs_gateway(docs_provider: DocsProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gateway for every document's examples: a key (as the examples send one), and workspace-write allowed
    to clients (API.md's x_codex example says the server needs it)."""
    root = tmp_path_factory.mktemp("doc-examples")
    home = write_codex_home(root / "codex-home", docs_provider.base_url)
    settings = {"PROXY_API_KEY": DOCS_KEY, "CODEX_CLIENT_SANDBOX_MODES": "read-only,workspace-write"}
    with run_gateway(home, root / "workspace", root / "gateway.log", **settings) as gateway:
        yield gateway.base_url


def run_examples(blocks: list[Example], address: str, env: dict[str, str], cwd: Path) -> None:
    """Run python blocks in one interpreter and each sh block in bash, with the address replaced."""
    python = [
        {"where": e.where, "code": e.code.replace(README_ADDRESS, address)} for e in blocks if e.language == "python"
    ]
    if python:
        done = subprocess.run(
            [sys.executable, "-c", PYTHON_RUNNER], input=json.dumps(python), env=env, cwd=cwd,
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, (
            f"{blocks[0].doc}'s python examples failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
        )
    for example in (e for e in blocks if e.language == "sh"):
        code = BASH_PRELUDE + example.code.replace(README_ADDRESS, address)
        done = subprocess.run(["/bin/bash", "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{example.where} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"


@pytest.mark.parametrize("doc", [doc for doc in BOTH if not doc.startswith("docs/SCALING")])
def test_the_examples_run(doc: str, docs_gateway: str, tmp_path: Path) -> None:
    env = clean_environment(PROXY_API_KEY=DOCS_KEY)
    run_examples(examples(doc), docs_gateway.removeprefix("http://"), env, tmp_path)


@pytest.mark.parametrize("doc", ["docs/SCALING.md", "docs/SCALING.ja.md"])
def test_the_two_gateway_recipe_runs(
    doc: str, docs_provider: DocsProvider, redis_server: RedisServer, tmp_path: Path
) -> None:
    """SCALING's by-hand recipe: its start block in the background (HOME a scratch folder whose Codex homes point
    at the fake model), then its examples against the two gateways it started."""
    blocks = examples(doc)
    [start] = [e for e in blocks if e.kind == "start"]
    ports = {"8001": str(free_port()), "8002": str(free_port())}
    home = tmp_path / "home"
    for name in re.findall(r"CODEX_HOME=~/(\.[\w-]+)", start.code):
        write_codex_home(home / name, docs_provider.base_url)
    env = clean_environment(HOME=str(home), PROXY_API_KEY=DOCS_KEY)
    env.pop("XDG_DATA_HOME", None)

    def adapted(code: str) -> str:
        code = code.replace("redis://127.0.0.1:6379/0", redis_server.url).replace(
            "make run", f"{sys.executable} -m app serve"
        )
        for port, free in ports.items():
            code = code.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free}").replace(f"PORT={port}", f"PORT={free}")
        return code

    log = (tmp_path / "recipe.log").open("wb")
    server = subprocess.Popen(
        ["/bin/bash", "-c", adapted(start.code) + "\nwait"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for port in ports.values():
            assert wait_for(lambda p=port: ready(p), timeout=60), (tmp_path / "recipe.log").read_text()[-3000:]
        rest = [Example(e.doc, e.line, e.kind, e.language, adapted(e.code)) for e in blocks if e.kind != "start"]
        run_examples(rest, "127.0.0.1:0", env, tmp_path)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def ready(port: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
