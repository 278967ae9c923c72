"""AGENTS.md of the working directory reaches the model in Codex's shape, on both engines (the app-server engine reads
it in the gateway, app/policy/project_docs.py; exec lets Codex read it), and one that a sandboxed command turned into a
link to a secret or a file outside the workspace never does."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.fakes.provider import FakeProvider, Script
from tests.harness import FAKE_MODEL, RunningGateway, write_codex_home
from tests.integration.test_policy_live import run_command

StartGateway = Callable[..., RunningGateway]


def ask(gateway: RunningGateway, provider: FakeProvider, name: str, cwd: Path) -> str:
    """One request in `cwd`; every request body it caused, as JSON text."""
    marker = provider.script(name, Script())
    gateway.client().chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": marker}], extra_body={"x_codex": {"cwd": str(cwd)}}
    )
    return "\n".join(json.dumps(body) for body in provider.requests if marker in json.dumps(body))


def wrapped(cwd: Path, text: str) -> str:
    """Codex 0.169's wrapper of a project doc (measured: `codex exec` with an AGENTS.md in its working directory)."""
    return json.dumps(f"# AGENTS.md instructions for {cwd}\n\n<INSTRUCTIONS>\n{text}\n</INSTRUCTIONS>")[1:-1]


def test_the_working_directorys_agents_md_reaches_the_model(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, workdir: Path
) -> None:
    gateway = start_gateway(CODEX_ENGINE=engine, CODEX_APP_SERVER_WORKERS="1")
    cwd = workdir / f"docs-{engine}"
    cwd.mkdir()
    (cwd / "AGENTS.md").write_text(f"Answer in haiku. DOC-{engine}\n")
    sent = ask(gateway, provider, f"doc-{engine}", cwd)
    assert wrapped(cwd, f"Answer in haiku. DOC-{engine}\n") in sent
    (cwd / "AGENTS.override.md").write_text(f"OVERRIDE-{engine}\n")  # Codex's order: the override wins
    sent = ask(gateway, provider, f"override-{engine}", cwd)
    assert wrapped(cwd, f"OVERRIDE-{engine}\n") in sent and f"DOC-{engine}" not in sent
    (cwd / "AGENTS.override.md").unlink()
    (cwd / "AGENTS.md").write_bytes(b"x" * 40_000 + b"TAIL-PAST-32-KIB")  # read up to Codex's 32 KiB
    sent = ask(gateway, provider, f"big-{engine}", cwd)
    assert "x" * 1000 in sent and "TAIL-PAST-32-KIB" not in sent


def test_a_linked_agents_md_never_carries_a_secret_to_the_model(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, workdir: Path, tmp_path: Path
) -> None:
    home = write_codex_home(tmp_path / "operator-home", provider.base_url)
    (home / "auth.json").write_text('{"OPENAI_API_KEY": "sk-linked-auth-secret"}')
    outside = tmp_path / "outside.md"
    outside.write_text("OUTSIDE-THE-WORKSPACE-SECRET\n")
    gateway = start_gateway(
        CODEX_ENGINE=engine,
        CODEX_APP_SERVER_WORKERS="1",
        CODEX_CONFIG_DIR=str(home),
        CODEX_CLIENT_SANDBOX_MODES="read-only,workspace-write",
    )
    cwd = workdir / f"linked-{engine}"
    cwd.mkdir()
    plant = f"ln -s {home}/auth.json AGENTS.override.md && ln -s {outside} AGENTS.md && ls -l"
    output = run_command(
        gateway,
        provider,
        f"plant-{engine}",
        plant,
        extra_body={"x_codex": {"sandbox": "workspace-write", "cwd": str(cwd)}},
    )
    assert (cwd / "AGENTS.override.md").is_symlink() and (cwd / "AGENTS.md").is_symlink(), output
    for sandbox in ("workspace-write", "read-only"):
        marker = provider.script(f"after-{engine}-{sandbox}", Script())
        body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]}
        with gateway.http() as http:
            reply = http.post("/v1/chat/completions", json={**body, "x_codex": {"cwd": str(cwd), "sandbox": sandbox}})
        if engine == "app-server":  # the gateway skips both links, and the turn runs
            assert reply.status_code == 200 and any(marker in json.dumps(b) for b in provider.requests)
        else:  # Codex's own sandboxed read is refused, and so is the turn
            assert reply.status_code == 502 and "AGENTS.md" in reply.json()["error"]["message"]
    every_request = "\n".join(json.dumps(body) for body in provider.requests)
    assert "sk-linked-auth-secret" not in every_request
    assert "OUTSIDE-THE-WORKSPACE-SECRET" not in every_request
    if engine == "app-server":  # the gateway refused both, by name, without reading them
        assert (
            "AGENTS.md skipped, not read" in gateway.log() and "resolves outside the working directory" in gateway.log()
        )
