"""Sealed app-server workers (app/policy/worker_seal.py): agent turns without the permission profile, the denied paths
hidden by the worker's own mount namespace, the login in Codex's memory only. Attacks through the real Codex: the
worker's CODEX_HOME view (its path is in every command's environment), /proc, descriptors, mount table, view_image
of the home's files, and apply_patch (which Codex verifies in the worker's own process) through links planted in a
writable workspace: to every file, environment and descriptor the worker itself can open."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, RunningGateway, wait_for, write_codex_home
from tests.integration.test_policy_live import run_command
from tests.integration.test_security_sandbox import PATCH_MODEL, data_dir

StartGateway = Callable[..., RunningGateway]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SECRET = "sk-sealed-auth-secret"
ENV_SECRET = "sk-gateway-environment-secret"  # in the gateway's own environment, never in Codex's
WRITABLE = {"x_codex": {"sandbox": "workspace-write"}}


def sealed_gateway(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path, **config: object
) -> tuple[RunningGateway, Path]:
    home = write_codex_home(tmp_path / "sealed-home", provider.base_url, **config)
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": SECRET}))
    (home / "secret.png").write_bytes(PNG)  # not part of the worker's view
    gateway = start_gateway(
        CODEX_ENGINE="app-server",
        CODEX_APP_SERVER_WORKERS="1",
        CODEX_CONFIG_DIR=str(home),
        CODEX_CLIENT_SANDBOX_MODES="read-only,workspace-write",
        OPENAI_API_KEY=ENV_SECRET,
    )
    assert "app-server workers sealed" in gateway.log(), gateway.log()
    return gateway, home


def patch(provider: FakeProvider, gateway: RunningGateway, name: str, text: str) -> str:
    """Have the fake model send `text` as an apply_patch call; the output Codex sent back."""
    marker = provider.script(name, Script(calls=[[{"name": "apply_patch", "input": text}]]))
    gateway.client().chat.completions.create(
        model=PATCH_MODEL, messages=[{"role": "user", "content": marker}], extra_body=WRITABLE
    )
    outputs = [o for b in provider.requests if marker in json.dumps(b) for o in tool_outputs(b)]
    assert outputs, f"Codex did not answer the patch {name}"
    return outputs[-1]


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


def test_apply_patch_in_a_sealed_worker_reaches_no_secret(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path, workdir: Path
) -> None:
    """Links to whatever the worker's own process can open: its view of CODEX_HOME, the real one, the environments
    of the worker, of its namespace's first process and of the gateway, and the worker's descriptors (its session
    with the gateway among them). An Update with a Move carries what Codex read into the workspace."""
    gateway, home = sealed_gateway(start_gateway, provider, tmp_path)
    assert gateway.process is not None
    before = len(provider.requests)  # earlier tests' commands name the secret
    sources = [
        "$CODEX_HOME/auth.json", "$CODEX_HOME/config.toml", f"{home}/auth.json", f"{gateway.codex_home}/auth.json",
        "/proc/self/environ", "/proc/1/environ", f"/proc/{gateway.process.pid}/environ", "/proc/self/fd/0",
        "/proc/self/fd/1", "/proc/self/fd/2", f"/proc/self/root{home}/auth.json", "/proc/self/cmdline",
    ]  # fmt: skip
    names = {f"sealed-{n}.txt": source for n, source in enumerate(sources)}
    plant = "; ".join(f'ln -sfn "{source}" {name}' for name, source in names.items())
    run_command(gateway, provider, "sealed-plant", plant, extra_body=WRITABLE)
    for n, name in enumerate(names):
        text = f"*** Begin Patch\n*** Update File: {name}\n*** Move to: {name}.moved\n@@\n+x\n*** End Patch\n"
        patch(provider, gateway, f"sealed-move-{n}", text)
    moved = "".join(p.read_text(errors="replace") for p in workdir.glob("sealed-*.moved"))
    assert len(list(workdir.glob("sealed-*.moved"))) >= 2, "no patch went through: the attack was not tried"
    seen = json.dumps(provider.requests[before:])
    for secret in (SECRET, ENV_SECRET, "sk-unused"):  # the login, the gateway's environment, its API key
        assert secret not in moved and secret not in seen
    assert "cli_auth_credentials_store" in moved  # what the view's config.toml holds: no credential


def test_apply_patch_in_a_sealed_worker_cannot_write_what_configures_codex(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path, workdir: Path
) -> None:
    """Links to the view's config.toml, instructions, rules and skills, and to the real home's: a patch through them
    must not land anywhere Codex reads its configuration from. (Codex reads in the worker's process, but writes
    through the command sandbox, which cannot see the view.)"""
    gateway, home = sealed_gateway(start_gateway, provider, tmp_path)
    targets = {
        "cfg": "$CODEX_HOME/config.toml", "agents": "$CODEX_HOME/AGENTS.md", "rules": "$CODEX_HOME/rules/x.rules",
        "skill": "$CODEX_HOME/skills/x/SKILL.md", "realcfg": f"{home}/config.toml", "realagents": f"{home}/AGENTS.md",
    }  # fmt: skip
    plant = "; ".join(f'ln -sfn "{target}" w-{name}' for name, target in targets.items())
    run_command(gateway, provider, "sealed-plant-w", plant, extra_body=WRITABLE)
    for name in targets:
        for kind in ("Update", "Add"):
            body = "@@\n+PATCHED-IN\n" if kind == "Update" else "+PATCHED-IN\n"
            text = f"*** Begin Patch\n*** {kind} File: w-{name}\n{body}*** End Patch\n"
            output = patch(provider, gateway, f"sealed-w-{name}-{kind}", text)
            assert "Failed to write file" in output or "verification failed" in output, output  # tried, refused
    for path in [home / "config.toml", home / "AGENTS.md", *home.rglob("*.rules"), *home.rglob("SKILL.md")]:
        assert not path.exists() or "PATCHED-IN" not in path.read_text(), path
    for path in data_dir(gateway).rglob("*"):  # Codex's own state, the view's config.toml among it
        assert not path.is_file() or b"PATCHED-IN" not in path.read_bytes(), path


def test_a_sealed_worker_takes_the_login_in_memory_and_a_new_one_without_a_restart(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    entry = {"model_providers": {"fake": {"name": "fake", "base_url": provider.base_url, "wire_api": "responses",
             "request_max_retries": 0, "stream_max_retries": 0, "requires_openai_auth": True}}}  # fmt: skip
    gateway, home = sealed_gateway(start_gateway, provider, tmp_path, **entry)
    hello = [{"role": "user", "content": "hello"}]
    gateway.client().chat.completions.create(model=FAKE_MODEL, messages=hello)
    assert provider.authorizations[-1] == f"Bearer {SECRET}"
    (home / "auth.json").write_text(json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-rotated"}))
    gateway.client().chat.completions.create(model=FAKE_MODEL, messages=hello)
    assert provider.authorizations[-1] == "Bearer sk-rotated"
    state = [p.read_bytes() for p in data_dir(gateway).rglob("*") if p.is_file() and p.stat().st_size < 10**7]
    assert state and not [data for data in state if SECRET.encode() in data or b"sk-rotated" in data]


def chatgpt_login() -> dict[str, object]:
    """What `codex login` writes for a ChatGPT account (the tokens unsigned: the fake provider checks none)."""

    def jwt(claims: dict[str, object]) -> str:
        part = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"e30.{part}.c2ln"

    auth = {"chatgpt_plan_type": "plus", "chatgpt_account_id": "acct-sealed", "chatgpt_user_id": "user-sealed"}
    claims = {"email": "a@example.com", "exp": 4102444800, "https://api.openai.com/auth": auth}
    tokens = {
        "id_token": jwt(claims),
        "access_token": jwt(claims),
        "refresh_token": SECRET,
        "account_id": "acct-sealed",
    }
    return {"OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": "2026-12-05T00:00:00Z"}


def test_a_chatgpt_login_made_while_sealed_unseals_the_workers(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    """A ChatGPT login cannot be handed over in memory (app/codex/login_handover.py): the first turn after it appears
    is refused with the reason, the workers restart under the permission profile, and the login stays out of every
    command's reach. (Codex cannot check a ChatGPT login offline: the provider here needs none.)"""
    home = write_codex_home(tmp_path / "chatgpt-home", provider.base_url)
    gateway = start_gateway(
        CODEX_ENGINE="app-server", CODEX_APP_SERVER_WORKERS="1", CODEX_CONFIG_DIR=str(home),
        CODEX_CLIENT_SANDBOX_MODES="read-only,workspace-write",
    )  # fmt: skip
    assert "app-server workers sealed" in gateway.log()
    (home / "auth.json").write_text(json.dumps(chatgpt_login()))
    with pytest.raises(openai.APIStatusError) as refused:
        gateway.client().chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 503 and "sealed workers cannot hold (chatgpt)" in str(refused.value)
    assert wait_for(lambda: "app-server workers unsealed" in gateway.log())
    assert wait_for(lambda: gateway.http().get("/ready").status_code == 200)
    output = run_command(gateway, provider, "chatgpt-peek", f'cat {home}/auth.json "$CODEX_HOME/auth.json"; echo ok')
    assert SECRET not in output and "Permission denied" in output, output


def test_a_chatgpt_login_keeps_the_permission_profile(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    home = write_codex_home(tmp_path / "chatgpt-home", provider.base_url)
    (home / "auth.json").write_text(json.dumps(chatgpt_login()))
    gateway = start_gateway(CODEX_ENGINE="app-server", CODEX_APP_SERVER_WORKERS="1", CODEX_CONFIG_DIR=str(home))
    assert "app-server workers not sealed: the login in auth.json (chatgpt)" in gateway.log(), gateway.log()
    output = run_command(gateway, provider, "chatgpt-peek-2", f'cat {home}/auth.json "$CODEX_HOME/auth.json"; echo ok')
    assert SECRET not in output and "Permission denied" in output, output


def test_the_operator_can_keep_the_profile(start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path) -> None:
    home = write_codex_home(tmp_path / "unsealed-home", provider.base_url)
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": SECRET}))
    gateway = start_gateway(
        CODEX_ENGINE="app-server", CODEX_APP_SERVER_WORKERS="1", CODEX_CONFIG_DIR=str(home), CODEX_SEAL_WORKERS="0"
    )
    assert "app-server workers not sealed: CODEX_SEAL_WORKERS=0" in gateway.log()
    output = run_command(gateway, provider, "unsealed-peek", f'cat {home}/auth.json "$CODEX_HOME/auth.json"; echo ok')
    assert SECRET not in output and "Permission denied" in output and "/dev/shm" not in output, output
