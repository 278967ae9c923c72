"""Issue 20, findings 2, 3 and 4: a key holder (the fake model's shell tool standing in for a prompt-injected model)
looks for the operator's credentials in Codex's environment, in /proc and in every Codex home, and for other
key holders' conversations in the Redis store, through the real
Codex sandbox on both engines. Each test reproduces an attack that worked before the control."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from tests.fakes.provider import FakeProvider
from tests.harness import FAKE_MODEL, write_codex_home
from tests.integration.test_operations import run_cli
from tests.integration.test_policy_live import run_command
from tests.integration.test_security_sandbox import StartGateway, startup_error
from tests.redis_server import RedisServer

SECRETS = {
    "OPENAI_API_KEY": "sk-openai-env-secret",
    "CODEX_API_KEY": "sk-codex-env-secret",
    "OTHER_PROVIDER_KEY": "sk-other-provider-secret",  # the env_key of a provider that is not the active one
}
BEARER = "sk-bearer-in-codex-home"
# Everything a sandboxed command can see of its own and its launcher's environment.
LOOK = (
    "env; echo; echo PROC1; tr '\\0' '\\n' < /proc/1/environ; "
    "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done"
)


def home_with_credential(home: Path, provider: FakeProvider, where: str) -> Path:
    """A CODEX_HOME holding the provider's key (in its config.toml entry, or in auth.json for a provider that takes
    the OpenAI login), and a second provider whose key would come from the environment."""
    write_codex_home(home, provider.base_url)
    config = (home / "config.toml").read_text()
    if where == "experimental_bearer_token":
        entry = f"experimental_bearer_token = {json.dumps(BEARER)}"
    else:
        entry = "requires_openai_auth = true"
        (home / "auth.json").write_text(json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": BEARER}))
    config = config.replace("[model_providers.fake]\n", f"[model_providers.fake]\n{entry}\n")
    other = {"name": "other", "base_url": "http://127.0.0.1:9/v1", "env_key": "OTHER_PROVIDER_KEY"}
    (home / "config.toml").write_text(config + "\n" + tomli_w.dumps({"model_providers": {"other": other}}))
    return home


# Finding 2: provider keys in Codex's environment.


@pytest.mark.parametrize("where", ["experimental_bearer_token", "auth.json"])
def test_no_provider_key_is_in_reach_of_a_sandboxed_command(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, tmp_path: Path, where: str
) -> None:
    home = home_with_credential(tmp_path / "credential-home", provider, where)
    gateway = start_gateway(CODEX_ENGINE=engine, CODEX_APP_SERVER_WORKERS="1", CODEX_CONFIG_DIR=str(home), **SECRETS)
    before = len(provider.authorizations)
    output = run_command(gateway, provider, f"env-keys-{engine}-{where}", LOOK + f"; cat {home}/*")
    for name, secret in SECRETS.items():
        assert secret not in output and f"{name}=" not in output, f"{name} leaked"
    assert BEARER not in output
    assert "CODEX_HOME=" in output and "PROC1\n" in output  # the command did read both environments
    assert "CODEX_HOME=" in output.split("PROC1\n", 1)[1]  # /proc/1/environ was readable: it just holds no key
    sent = provider.authorizations[before:]
    assert sent and all(value == f"Bearer {BEARER}" for value in sent)  # the key reached the provider all the same
    assert "CODEX_API_KEY, OPENAI_API_KEY set in the gateway's environment is not passed to Codex" in gateway.log()


def test_a_provider_that_takes_its_key_from_the_environment_stops_startup(
    tmp_path: Path, provider: FakeProvider
) -> None:
    home = write_codex_home(tmp_path / "env-key-home", provider.base_url)
    config = (
        (home / "config.toml")
        .read_text()
        .replace("[model_providers.fake]\n", '[model_providers.fake]\nenv_key = "FAKE_KEY"\n')
    )
    (home / "config.toml").write_text(config)
    done = startup_error(tmp_path, provider, CODEX_CONFIG_DIR=str(home), FAKE_KEY="sk-fake-env-secret")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "model_providers.fake.env_key = 'FAKE_KEY'" in lines[0]
    assert "experimental_bearer_token" in lines[0] and "sk-fake-env-secret" not in done.stderr
    doctor = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), FAKE_KEY="sk-fake-env-secret")
    assert "FAIL provider: model_providers.fake.env_key = 'FAKE_KEY'" in doctor.stdout


# Finding 3: every Codex home of the operator, not only the configured one.


def test_every_codex_home_of_the_operator_is_denied(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, tmp_path: Path
) -> None:
    configured = write_codex_home(tmp_path / "configured-home", provider.base_url)
    (configured / "auth.json").write_text('{"OPENAI_API_KEY": "sk-configured-home-secret"}')
    os_home = tmp_path / "os-codex-home"
    os_home.mkdir()
    (os_home / "auth.json").write_text('{"OPENAI_API_KEY": "sk-os-codex-home-secret"}')
    user = tmp_path / "operator"
    (user / ".codex").mkdir(parents=True)
    (user / ".codex" / "auth.json").write_text('{"OPENAI_API_KEY": "sk-dot-codex-secret"}')
    gateway = start_gateway(
        CODEX_ENGINE=engine,
        CODEX_APP_SERVER_WORKERS="1",
        CODEX_CONFIG_DIR=str(configured),
        CODEX_HOME=str(os_home),
        HOME=str(user),
    )
    targets = [configured / "auth.json", os_home / "auth.json", user / ".codex" / "auth.json"]
    output = run_command(gateway, provider, f"homes-{engine}", "; ".join(f"cat {t}" for t in targets) + "; echo $HOME")
    for secret in ("sk-configured-home-secret", "sk-os-codex-home-secret", "sk-dot-codex-secret"):
        assert secret not in output, f"{secret} leaked"
    assert output.count("Permission denied") == len(targets), output  # each read was tried and refused
    assert str(user) in output  # the command ran, with the operator's HOME


# Finding 4: the Redis store in reach of a network-enabled sandbox.

NETWORK = {"CODEX_CLIENT_SANDBOX_MODES": "read-only,workspace-write", "CODEX_CLIENT_NETWORK_ACCESS": "1"}


def test_a_redis_without_a_password_stops_startup_when_sandboxes_may_have_network(
    tmp_path: Path, provider: FakeProvider, redis_server: RedisServer
) -> None:
    done = startup_error(tmp_path, provider, CODEX_STORE_URL=redis_server.url, **NETWORK)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codex-wrapper: CODEX_STORE_URL is a Redis without a password")
    assert "CODEX_CLIENT_NETWORK_ACCESS" in lines[0]
    home = write_codex_home(tmp_path / "doctor-home", provider.base_url)
    doctor = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), CODEX_STORE_URL=redis_server.url, **NETWORK)
    assert "FAIL store: CODEX_STORE_URL is a Redis without a password" in doctor.stdout


def test_a_network_enabled_sandbox_cannot_read_the_store(
    start_gateway: StartGateway, engine: str, provider: FakeProvider, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "redis", password=f"pw-{tmp_path.name}").start()
    try:
        gateway = start_gateway(
            CODEX_ENGINE=engine,
            CODEX_APP_SERVER_WORKERS="1",
            CODEX_STORE_URL=redis.url,
            PROXY_API_KEY="sk-alice,sk-bob",
            **NETWORK,
        )
        first = gateway.client("sk-alice").responses.create(model=FAKE_MODEL, input=f"alice-private-note-{engine}")
        assert redis.command("DBSIZE") != b":0\r\n"  # her conversation is in Redis
        client = (  # Bob's command: a small Redis client, as in the red team's repro
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {redis.port}), timeout=5)\n"
            "for c in (b'*2\\r\\n$4\\r\\nKEYS\\r\\n$1\\r\\n*\\r\\n', b'*2\\r\\n$4\\r\\nAUTH\\r\\n$0\\r\\n\\r\\n'):\n"
            "    s.sendall(c); print('REDIS', s.recv(65536))\n"
        )
        command = f"python3 - <<'EOF'\n{client}EOF\nenv"
        x_codex = {"sandbox": "workspace-write", "network_access": True}
        output = run_command(
            gateway, provider, f"redis-{engine}", command, api_key="sk-bob", extra_body={"x_codex": x_codex}
        )
        assert output.count("REDIS b'-") == 2 and "NOAUTH" in output  # it reached Redis, which refused it
        assert "alice-private-note" not in output and "codex-wrapper:{" not in output
        assert redis.password not in output  # not in Codex's environment either
        again = gateway.client("sk-alice").responses.create(
            model=FAKE_MODEL, input="go on", previous_response_id=first.id
        )
        assert again.output_text == "pong"  # the gateway itself still uses the store
    finally:
        redis.stop()
