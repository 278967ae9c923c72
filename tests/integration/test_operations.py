"""Operating the gateway: metrics, the JSON request log, request ids, `doctor`, `config`, Docker files."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.fakes.provider import FakeProvider, Script
from tests.harness import (
    FAKE_MODEL,
    REPO,
    SERVE_COMMAND,
    RunningGateway,
    clean_environment,
    free_port,
    wait_for,
    write_codex_home,
)

StartGateway = Callable[..., RunningGateway]
HELLO = [{"role": "user", "content": "hello"}]


def metric_value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_real_requests(start_gateway: StartGateway, provider: FakeProvider) -> None:
    gateway = start_gateway(PROXY_API_KEY="sk-metrics")
    client = gateway.client("sk-metrics")
    client.chat.completions.create(model=FAKE_MODEL, messages=HELLO)
    client.responses.create(model=FAKE_MODEL, input="hi")
    marker = provider.script("metrics-500", Script(status=500))
    with gateway.http(headers={"Authorization": "Bearer sk-metrics"}) as http:  # /metrics: key holders only
        http.post(
            "/v1/chat/completions",
            json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}]},
        )
        # a request is counted once its response has gone out: poll until the last one shows
        assert wait_for(
            lambda: metric_value(http.get("/metrics").text, "codex_wrapper_requests_total", status="502") == 1
        )
        text = http.get("/metrics").text
    assert metric_value(text, "codex_wrapper_requests_total", endpoint="/v1/chat/completions", status="200") == 1
    assert metric_value(text, "codex_wrapper_requests_total", endpoint="/v1/responses", status="200") == 1
    assert metric_value(text, "codex_wrapper_requests_total", endpoint="/v1/chat/completions", status="502") == 1
    assert metric_value(text, "codex_wrapper_request_seconds_count", endpoint="/v1/chat/completions") == 2
    assert metric_value(text, "codex_wrapper_time_to_first_token_seconds_count", endpoint="/v1/responses") == 1
    assert metric_value(text, "codex_wrapper_upstream_errors_total", kind="upstream") == 1
    assert "codex_wrapper_queue_depth 0.0" in text and "codex_wrapper_turns_in_flight 0.0" in text
    assert "codex_wrapper_codex_restarts_total 0.0" in text


def test_one_json_log_line_per_request_without_secrets(start_gateway: StartGateway) -> None:
    gateway = start_gateway(PROXY_API_KEY="sk-do-not-log-me")
    with gateway.http(headers={"Authorization": "Bearer sk-do-not-log-me", "x-request-id": "trace-123"}) as http:
        response = http.post("/v1/chat/completions", json={"model": FAKE_MODEL, "messages": HELLO})
        assert response.headers["x-request-id"] == "trace-123"
        generated = http.get("/v1/models", headers={"x-request-id": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32

    def lines() -> list[dict]:
        return [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]

    # the line is written once the response has gone out: give it a moment to land in the log file
    assert wait_for(lambda: {"trace-123", generated} <= {line.get("request_id") for line in lines()})
    assert "sk-do-not-log-me" not in gateway.log()
    [chat] = [line for line in lines() if line.get("request_id") == "trace-123"]
    assert chat["endpoint"] == "/v1/chat/completions" and chat["status"] == 200 and chat["model"] == FAKE_MODEL
    assert chat["engine"] == "app-server" and chat["input_tokens"] == 11 and chat["output_tokens"] == 7
    for name in ("queue_wait_ms", "ttft_ms", "total_ms"):
        assert isinstance(chat[name], float | int) and chat[name] >= 0


def run_cli(command: str, tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    defaults = {"CODEX_WORKDIR": str(tmp_path / "work"), "CODEX_DATA_DIR": str(tmp_path / "data")}
    env = clean_environment(**{**defaults, **settings})
    return subprocess.run(
        [sys.executable, "-m", "app", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_doctor_passes_on_a_good_setup(provider: FakeProvider, tmp_path: Path) -> None:
    home = write_codex_home(tmp_path / "home", provider.base_url)
    done = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), PORT=str(free_port()), CODEX_LOCAL_ONLY="1")
    assert done.returncode == 0, done.stdout
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["ok"] * 9
    assert "0.169.0" in done.stdout and "provider: fake at http://127.0.0.1" in done.stdout
    assert "plan: limits not known (" in done.stdout  # no ChatGPT login: account/rateLimits/read refuses
    assert f"store: sqlite at {tmp_path / 'data' / 'responses.sqlite3'} answering" in done.stdout


def test_doctor_names_the_fix(provider: FakeProvider, tmp_path: Path) -> None:
    remote = write_codex_home(tmp_path / "remote", "https://api.example.com/v1")
    missing = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(remote), CODEX_PATH="/nope/codex", CODEX_LOCAL_ONLY="1")
    assert missing.returncode == 1
    failed = [line for line in missing.stdout.splitlines() if line.startswith("FAIL")]
    assert any(line.startswith("FAIL codex") and "Fix: correct CODEX_PATH" in line for line in failed)
    assert any(line.startswith("FAIL provider") and "CODEX_LOCAL_ONLY=0" in line for line in failed)
    bad_dir = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(remote), CODEX_WORKDIR="/proc/no-such-dir")
    assert bad_dir.returncode == 1 and "FAIL settings" in bad_dir.stdout and "CODEX_WORKDIR" in bad_dir.stdout


def test_doctor_knows_its_gateway_on_a_busy_port(
    provider: FakeProvider, tmp_path: Path, gateway: RunningGateway
) -> None:
    home = write_codex_home(tmp_path / "home", provider.base_url)
    port = gateway.base_url.rsplit(":", 1)[1]
    running = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), PORT=port)
    assert f"ok   port: 127.0.0.1:{port} in use by this gateway" in running.stdout
    with socket.socket() as other:  # something else holds the port: that is a conflict
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = str(other.getsockname()[1])
        done = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), PORT=taken)
    assert done.returncode == 1 and f"FAIL port: cannot listen on 127.0.0.1:{taken}" in done.stdout
    assert "Fix: set PORT" in done.stdout


def test_doctor_on_a_fresh_machine_names_only_true_causes(provider: FakeProvider, tmp_path: Path) -> None:
    """No ~/.codex yet (HOME empty): the sandbox works once the gateway creates it, so doctor must not blame it."""
    fresh = tmp_path / "fresh-home"
    fresh.mkdir()
    done = run_cli("doctor", tmp_path, HOME=str(fresh), PORT=str(free_port()))
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines()}
    assert lines["ok   sandbox"].startswith("ok   sandbox: works (a sandboxed command ran")
    assert f"{fresh / '.codex'} does not exist yet (the gateway creates it)" in lines["ok   sandbox"]
    assert "Codex is not logged in" in lines["FAIL login"] and "npx codex login" in lines["FAIL login"]
    assert not (fresh / ".codex").exists()  # doctor changes nothing


def other_codex(tmp_path: Path) -> Path:
    """A `codex` 0.120.0, as a globally installed Codex of another version is."""
    fake = tmp_path / "other-bin" / "codex"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'codex-cli 0.120.0'\n")
    fake.chmod(0o755)
    return fake


def test_the_pinned_codex_runs_with_another_on_path(
    start_gateway: StartGateway, provider: FakeProvider, tmp_path: Path
) -> None:
    fake = other_codex(tmp_path)
    path = f"{fake.parent}:{os.environ['PATH']}"
    gateway = start_gateway(PATH=path)
    assert gateway.client().chat.completions.create(model=FAKE_MODEL, messages=HELLO).choices[0].message.content
    assert "Codex 0.169.0 at " in gateway.log() and "(pinned, the tested version)" in gateway.log()
    home = write_codex_home(tmp_path / "home", provider.base_url)
    doctor = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), PATH=path, PORT=str(free_port()))
    assert "ok   codex: 0.169.0 at " in doctor.stdout and "(pinned; app-server engine)" in doctor.stdout
    chosen = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), CODEX_PATH=str(fake), PORT=str(free_port()))
    line = f"FAIL codex: Codex 0.120.0 at {fake} runs from CODEX_PATH: not the tested Codex 0.169.0 (package.json)"
    assert line in chosen.stdout and chosen.returncode == 1


def test_config_masks_secrets(tmp_path: Path) -> None:
    done = run_cli(
        "config", tmp_path, PROXY_API_KEY="sk-one,sk-two", RATE_LIMIT_STORAGE_URI="redis://user:hunter2@cache:6379/0"
    )
    assert done.returncode == 0
    assert "sk-one" not in done.stdout and "hunter2" not in done.stdout
    assert "# PROXY_API_KEY=*** (2 keys)" in done.stdout and "CODEX_SANDBOX_MODE=read-only" in done.stdout
    assert "# RATE_LIMIT_STORAGE_URI=redis://user:***@cache:6379/0" in done.stdout


def test_config_prints_effective_values_as_an_env_file(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    first = run_cli("config", tmp_path, CODEX_HOME=str(home), CODEX_ENV_FILE="tests/no-such.env", CODEX_API_DOCS="1")
    assert first.returncode == 0, first.stderr
    values = dict(line.split("=", 1) for line in first.stdout.splitlines() if not line.startswith("#"))
    assert values["CODEX_CONFIG_DIR"] == str(home)  # the CODEX_HOME in effect
    assert Path(values["CODEX_PATH"]).is_relative_to((REPO / "node_modules").resolve())  # the binary that would run
    assert Path(values["CODEX_PATH"]).name == "codex" and "0.169.0" in subprocess.check_output(
        [values["CODEX_PATH"], "--version"], text=True
    )
    assert values["CODEX_ALLOWED_HOSTS"] == "localhost,127.0.0.1,::1"  # the default applied (loopback, no key)
    assert values["CODEX_ENV_FILE"] == str(REPO / "tests" / "no-such.env")  # absolute
    assert values["CODEX_STORE_URL"] == str(tmp_path / "data" / "responses.sqlite3")
    assert values["RATE_LIMIT_STORAGE_URI"] == "memory://"
    assert values["CODEX_API_DOCS"] == "true" and values["CODEX_LOCAL_ONLY"] == "false"
    from app.config import Settings

    assert set(values) == {name.upper() for name in Settings.model_fields}
    # pasted back as the only source of settings, it gives the same settings
    env_file = tmp_path / "pasted.env"
    env_file.write_text(first.stdout)
    again = subprocess.run(
        [sys.executable, "-m", "app", "config"], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**clean_environment(), "CODEX_ENV_FILE": str(env_file)},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    differ = set(first.stdout.splitlines()) ^ set(again.stdout.splitlines())
    assert differ == {f"CODEX_ENV_FILE={values['CODEX_ENV_FILE']}", f"CODEX_ENV_FILE={env_file}"}


def test_compose_file_names_both_services() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"codex-wrapper", "open-webui"} <= set(services)
    assert services["open-webui"]["environment"]["OPENAI_API_BASE_URL"] == "http://codex-wrapper:${PORT:-8000}/v1"
    assert any(v.endswith(":/home/codex/.codex") for v in services["codex-wrapper"]["volumes"])
    assert services["codex-wrapper"]["environment"]["HOST"] == "0.0.0.0"
    assert services["codex-wrapper"]["restart"]
    # the image's HEALTHCHECK (/ready on $PORT) applies, and Codex's sandbox gets its seccomp profile
    for name in ("codex-wrapper", "codex-wrapper-second", "gateway-1", "gateway-2"):
        assert "healthcheck" not in services[name]
        [seccomp] = [opt for opt in services[name]["security_opt"] if opt.startswith("seccomp=")]
        assert (REPO / seccomp.removeprefix("seccomp=")).is_file()  # `make docker-test` runs with it
    assert services["codex-wrapper-second"]["profiles"] == ["second"]
    assert "./codex_profile:/app/codex_profile:ro" in services["codex-wrapper"]["volumes"]  # outside the workspace
    hosts = services["codex-wrapper"]["environment"]["CODEX_ALLOWED_HOSTS"]  # ${CODEX_ALLOWED_HOSTS:-default}
    assert "codex-wrapper" in hosts.split(":-", 1)[1].rstrip("}").split(",")


def test_dockerfile_runs_what_the_tests_run() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    [cmd] = [line for line in lines if line.startswith("CMD ")]
    assert tuple(json.loads(cmd.removeprefix("CMD "))) == SERVE_COMMAND
    text = "\n".join(lines)
    assert "npm ci" in text and "package-lock.json" in text and "USER codex" in text and "HEALTHCHECK" in text
    assert "HOST=0.0.0.0" in text
    assert "COPY package.json ./" in text  # the pin, which startup and doctor compare the running Codex with
    makefile = (REPO / "Makefile").read_text()
    assert shlex.join(SERVE_COMMAND[1:]) in makefile  # `make run` too
