"""Sealed app-server workers (app/policy/worker_seal.py): agent turns without the permission profile, the denied paths
hidden by the worker's own mount namespace. Attacks through the real Codex: the worker's CODEX_HOME view (its path
is in every command's environment), /proc, descriptors, mount table, view_image of the home's files and of links
planted in a writable workspace."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, RunningGateway, write_codex_home
from tests.integration.test_policy_live import run_command

StartGateway = Callable[..., RunningGateway]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SECRET = "sk-sealed-auth-secret"


def sealed_gateway(start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path) -> tuple[RunningGateway, Path]:
    home = write_codex_home(tmp_path / "sealed-home", provider.base_url)
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": SECRET}))
    (home / "secret.png").write_bytes(PNG)  # not part of the worker's view
    gateway = start_gateway(
        CODEX_ENGINE="app-server",
        CODEX_APP_SERVER_WORKERS="1",
        CODEX_CONFIG_DIR=str(home),
        CODEX_CLIENT_SANDBOX_MODES="read-only,workspace-write",
    )
    assert "app-server workers sealed" in gateway.log(), gateway.log()
    return gateway, home


def test_a_sealed_workers_home_is_out_of_every_commands_reach(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    gateway, home = sealed_gateway(start_gateway, provider, tmp_path)
    command = (
        f'cat {home}/auth.json; cat "$CODEX_HOME/auth.json" "$CODEX_HOME/config.toml"; '
        f"cat /proc/1/root$CODEX_HOME/auth.json /proc/*/root{home}/auth.json 2>&1 | sort -u; "
        "ls -la /dev/shm $CODEX_HOME; ls -l /proc/self/fd/ /proc/1/fd/ | grep -v -e pipe -e /dev/null; "
        f"cat /proc/*/environ /proc/self/mountinfo | tr '\\0' '\\n' | grep -c -e {SECRET} -e wire_api; "
        "echo CODEX_HOME=$CODEX_HOME"
    )
    for sandbox in ("read-only", "workspace-write"):
        output = run_command(
            gateway, provider, f"seal-{sandbox}", command, extra_body={"x_codex": {"sandbox": sandbox}}
        )
        assert "CODEX_HOME=/dev/shm/" in output  # the command ran, in a sealed worker
        assert SECRET not in output and "wire_api" not in output, output
        assert f"{home}/auth.json: Permission denied" in output, output  # tried and refused
        assert "\n0\n" in output, output  # no process environment or mount names a secret


def test_view_image_finds_no_image_in_a_sealed_workers_home(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path, workdir: Path
) -> None:
    gateway, home = sealed_gateway(start_gateway, provider, tmp_path)
    view = f"/dev/shm/codex-wrapper{home.resolve()}"
    link = f"seal-link-{tmp_path.name}.png"
    run_command(
        gateway, provider, f"plant-{tmp_path.name}", f"ln -s {view}/secret.png {link}; ln -s {view}/auth.json a.png",
        extra_body={"x_codex": {"sandbox": "workspace-write"}},
    )  # fmt: skip
    for n, path in enumerate([f"{view}/secret.png", f"{view}/auth.json", str(home / "secret.png"), link, "a.png"]):
        call = {"name": "view_image", "arguments": json.dumps({"path": path})}
        marker = provider.script(f"seal-view-{n}-{tmp_path.name}", Script(tool_call=call, deltas=["looked"]))
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": marker}])
        bodies = [b for b in provider.requests if marker in json.dumps(b)]
        assert len(bodies) >= 2 and tool_outputs(bodies[-1]), path  # the call was made and answered
        assert not any("data:image" in json.dumps(b) or SECRET in json.dumps(b) for b in bodies), path
