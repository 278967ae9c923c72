"""`make docker-test`: the image built and run here, against the fake model provider, with the compose file's settings.

1. Build the image (BuildKit; this machine's CA bundle as a build secret when there is one) and prove the bundle is
   in no layer, no history line and no setting of the image; no Node or npm in it.
2. Run it as `docker compose up` would run the codex-wrapper service (its security_opt, environment and volume
   targets; host network and a free PORT here): /health, /ready, Docker's own health status (the image's
   HEALTHCHECK must follow PORT and readiness), a streamed chat, and Codex's sandbox through the gateway: the fake
   model makes Codex write a file, which read-only must block and workspace-write must allow.
3. The defects this image had, run for real: Docker's default seccomp profile (the sandbox cannot work: agent mode
   refused in /ready, doctor and one log line; the container unhealthy), a root-owned CODEX_HOME (one log line with
   the fix). No container log may hold a traceback or an unretrieved future.
Everything it starts (containers, volumes) is removed by id at the end. Prints the figures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.provider import FakeProvider, Script, tool_outputs
from tests.harness import FAKE_MODEL, REPO, free_port, write_codex_home

IMAGE = "codex-wrapper:docker-test"
SERVICE = "codex-wrapper"
CONTAINER_UID = 1000
FIGURES: dict[str, str] = {}


class DockerTestFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise DockerTestFailed(message)
    print(f"ok   {message}")


class Docker:
    """The docker CLI: the first on PATH (or $DOCKER) that can build with BuildKit, which build secrets need."""

    def __init__(self) -> None:
        self.cli, self.env = self._find()
        self.containers: list[str] = []
        self.volumes: list[str] = []

    @staticmethod
    def _find() -> tuple[str, dict[str, str]]:
        candidates = [os.environ["DOCKER"]] if os.environ.get("DOCKER") else []
        for folder in os.environ.get("PATH", "").split(os.pathsep):
            path = Path(folder) / "docker"
            if path.is_file() and os.access(path, os.X_OK) and str(path) not in candidates:
                candidates.append(str(path))
        for cli in candidates:
            if subprocess.run([cli, "buildx", "version"], capture_output=True).returncode == 0:
                return cli, {**os.environ, "DOCKER_BUILDKIT": "1"}
            version = subprocess.run([cli, "version", "-f", "{{.Client.Version}}"], capture_output=True, text=True)
            major = version.stdout.strip().split(".")[0]
            if major.isdigit() and int(major) < 23:  # BuildKit built into the client
                return cli, {**os.environ, "DOCKER_BUILDKIT": "1"}
        raise DockerTestFailed(f"no docker client with BuildKit (docker buildx) among {candidates or ['none']}")

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.cli, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise DockerTestFailed(f"docker {' '.join(args[:3])} ...: {done.stderr.strip()[-1500:]}")
        return done

    def run(self, *args: str) -> str:
        container = self("run", "-d", *args).stdout.strip()
        self.containers.append(container)
        return container

    def volume(self) -> str:
        name = self("volume", "create").stdout.strip()
        self.volumes.append(name)
        return name

    def cleanup(self) -> None:
        for container in self.containers:
            self("rm", "-f", "-v", container, check=False)
        for volume in self.volumes:
            self("volume", "rm", volume, check=False)


def ca_bundle() -> Path | None:
    for candidate in (os.environ.get("CODEX_WRAPPER_CA_BUNDLE"), os.environ.get("SSL_CERT_FILE")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def build(docker: Docker, bundle: Path | None) -> None:
    if docker("image", "inspect", "python:3.11-slim-trixie", check=False).returncode != 0:
        print("no python:3.11-slim-trixie here: building the stand-in (tests/docker/base_images.sh)")
        env = {**os.environ, "DOCKER": docker.cli}
        subprocess.run(["bash", str(REPO / "tests/docker/base_images.sh")], env=env, check=True)
    secret = ["--secret", f"id=ca_bundle,src={bundle}"] if bundle else []
    cold = os.environ.get("DOCKER_TEST_NO_CACHE") == "1"  # every stage built again: the build time of a new machine
    started = time.monotonic()
    docker("build", "--network", "host", *secret, *(["--no-cache"] if cold else []), "-t", IMAGE, str(REPO),
           timeout=3600)  # fmt: skip
    how = "without the layer cache (DOCKER_TEST_NO_CACHE=1)" if cold else "with the layer cache this machine has"
    FIGURES["build time"] = f"{time.monotonic() - started:.0f} s ({how})"
    size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    FIGURES["image size"] = f"{size / 1e6:.0f} MB"
    print(f"built {IMAGE}: {FIGURES['image size']} in {FIGURES['build time']}")


def certificates(pem: str) -> set[str]:
    return {block.split("-----")[0].strip() for block in pem.split("-----BEGIN CERTIFICATE-----")[1:]}


def check_image_contents(docker: Docker, bundle: Path | None) -> None:
    config = json.loads(docker("image", "inspect", IMAGE).stdout)[0]["Config"]
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE).stdout
    check("/run/secrets" not in json.dumps(config) and "BEGIN CERTIFICATE" not in history,
          "the image's settings and history name no build secret")  # fmt: skip
    container = docker("create", IMAGE).stdout.strip()
    docker.containers.append(container)
    # this machine's own CAs (a TLS-inspecting proxy's), added the Debian way; the whole bundle by its digest
    local = "".join(path.read_text() for path in sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt")))
    markers = [cert.replace("\n", "")[:60].encode() for cert in certificates(local)]
    digest = hashlib.sha256(bundle.read_bytes()).digest() if bundle else b""
    found, node = [], []
    with subprocess.Popen([docker.cli, "export", container], stdout=subprocess.PIPE, env=docker.env) as export:
        assert export.stdout is not None
        with tarfile.open(fileobj=export.stdout, mode="r|") as layers:
            for member in layers:
                name = member.name
                if Path(name).name in ("node", "nodejs", "npm"):
                    node.append(name)
                if not member.isfile() or member.size > 50_000_000:
                    continue
                handle = layers.extractfile(member)
                data = handle.read() if handle is not None else b""
                flat = data.replace(b"\n", b"")
                if hashlib.sha256(data).digest() == digest or any(marker in flat for marker in markers):
                    found.append(name)
    check(not found, f"no file of the image holds this machine's CA bundle or one of its {len(markers)} own CAs")
    check(not node, "no Node or npm in the image")


def compose_service() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"][SERVICE]


def run_args(service: dict[str, Any], home: Path, port: int, docker: Docker, seccomp: bool = True) -> list[str]:
    """`docker run` arguments for the compose service: its security options, environment and volume targets."""
    args = ["--network", "host", "-e", f"PORT={port}", "--health-interval", "1s", "--health-start-period", "1s"]
    for option in service.get("security_opt", []):
        if option.startswith("seccomp="):
            if not seccomp:
                continue
            option = f"seccomp={(REPO / option.removeprefix('seccomp=')).resolve()}"
        args += ["--security-opt", option]
    for capability in service.get("cap_add", []):
        args += ["--cap-add", capability]
    if service.get("init"):
        args.append("--init")
    for key, flag in (("pids_limit", "--pids-limit"), ("mem_limit", "--memory")):
        if key in service:
            args += [flag, str(service[key])]
    for name, value in (service.get("environment") or {}).items():
        args += ["-e", f"{name}={interpolate(str(value))}"]
    for volume in service["volumes"]:
        target = volume.split(":")[1]
        if target == "/home/codex/.codex":
            args += ["-v", f"{home}:{target}"]
        elif target.startswith("/app/codex_profile"):
            continue  # a developer's own profile overrides stay out: the image's samples only
        else:
            args += ["-v", f"{docker.volume()}:{target}"]
    return [*args, IMAGE]


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` and `${NAME}`, from this environment (the test sets none of them)."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


AUTH_MARKER = "docker-test-login-token"
ENV_MARKER = "docker-test-env-file-secret"  # stands for what compose's env_file puts in the container's environment


def fake_home(root: Path, name: str, provider: FakeProvider, owner: int) -> Path:
    home = write_codex_home(root / name, provider.base_url)
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": AUTH_MARKER}))
    for path in (home, home / "config.toml", home / "auth.json"):
        os.chown(path, owner, owner)
    return home


def http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 60) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(what: str, predicate: Any, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError, ValueError):
            if predicate():
                return time.monotonic() - started
        time.sleep(0.2)
    raise DockerTestFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def health(docker: Docker, container: str) -> str:
    state = json.loads(docker("inspect", container).stdout)[0]["State"]
    return (state.get("Health") or {}).get("Status", "none")


def logs(docker: Docker, container: str) -> str:
    done = docker("logs", container, check=False)
    return done.stdout + done.stderr


def clean_log(docker: Docker, container: str) -> None:
    text = logs(docker, container)
    bad = [line for line in text.splitlines() if "Traceback" in line or "never retrieved" in line]
    check(not bad, f"no traceback and no unretrieved future in the log of {container[:12]}")


def shell_turn(base: str, provider: FakeProvider, name: str, command: str, **x_codex: str) -> str:
    """The fake model asks Codex (inside the container) to run `command`; the output Codex sent back."""
    call = {"name": "exec_command", "arguments": json.dumps({"cmd": command})}
    marker = provider.script(name, Script(tool_call=call, deltas=["ran it"]))
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": marker}], "x_codex": x_codex}
    status, text = http("POST", f"{base}/v1/chat/completions", body)
    if status != 200:
        raise DockerTestFailed(f"{name}: {status} {text[:500]}")
    outputs = [out for b in provider.requests if marker in json.dumps(b) for out in tool_outputs(b)]
    if not outputs:
        raise DockerTestFailed(f"{name}: Codex sent no command output back")
    return outputs[-1]


def streamed_chat(base: str) -> str:
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    status, text = http("POST", f"{base}/v1/chat/completions", body)
    lines = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    if status != 200 or not lines or lines[-1] != "[DONE]":
        raise DockerTestFailed(f"streamed chat: {status} {text[-300:]}")
    chunks = [json.loads(line) for line in lines[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def exists_in(docker: Docker, container: str, path: str) -> bool:
    return docker("exec", container, "test", "-e", path, check=False).returncode == 0


def the_service(docker: Docker, provider: FakeProvider, scratch: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = fake_home(scratch, "home", provider, CONTAINER_UID)
    started = time.monotonic()
    # the operator lets clients choose workspace-write (clients get read-only only, by default)
    allow = ["-e", "CODEX_CLIENT_SANDBOX_MODES=read-only,workspace-write", "-e", f"DOCKER_TEST_ENV_SECRET={ENV_MARKER}"]
    container = docker.run(*allow, *run_args(compose_service(), home, port, docker))
    wait_for("/health", lambda: http("GET", f"{base}/health", timeout=2)[0] == 200)
    wait_for("/ready", lambda: http("GET", f"{base}/ready", timeout=2)[0] == 200)
    FIGURES["time to ready"] = f"{time.monotonic() - started:.1f} s from `docker run`"
    status, ready = http("GET", f"{base}/ready")
    sandbox = json.loads(ready)["sandbox"]
    check(status == 200 and "write was blocked" in sandbox,
          f"/ready 200 on PORT={port} with the compose settings; sandbox: {sandbox}")  # fmt: skip
    wait_for("Docker's health status 'healthy'", lambda: health(docker, container) == "healthy", 60)
    check(True, "Docker reports the container healthy (the image's HEALTHCHECK on PORT, /ready)")
    check(streamed_chat(base) == "pong", "a streamed chat completion answers 'pong'")
    output = shell_turn(base, provider, "docker-ro", "touch /workspace/ro-probe")
    check("Read-only file system" in output and not exists_in(docker, container, "/workspace/ro-probe"),
          "read-only: Codex's write in the container is blocked by its sandbox")  # fmt: skip
    shell_turn(base, provider, "docker-ww", "touch /workspace/ww-probe", sandbox="workspace-write")
    check(exists_in(docker, container, "/workspace/ww-probe"), "workspace-write: the same write goes through")
    secret = shell_turn(base, provider, "docker-secret", "cat /home/codex/.codex/auth.json")
    check(AUTH_MARKER not in secret and "Permission denied" in secret,
          "the agent cannot read the operator's login (auth.json) in the container")  # fmt: skip
    environ = shell_turn(base, provider, "docker-environ", "cat /proc/[0-9]*/environ | tr '\\0' '\\n' | sort -u")
    check(ENV_MARKER not in environ and "PATH=" in environ,
          "a command reads no secret from the environment of the container's processes")  # fmt: skip
    seal = [line.split("codex_wrapper: ", 1)[-1] for line in logs(docker, container).splitlines() if "sealed" in line]
    check(bool(seal), f"agent turns in the container: {seal[-1] if seal else 'the log does not say'}")
    doctor = docker("exec", container, "python", "-m", "app", "doctor", check=False).stdout
    check("ok   sandbox: works" in doctor, "doctor in the container: sandbox works")
    clean_log(docker, container)


def default_seccomp(docker: Docker, provider: FakeProvider, scratch: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = fake_home(scratch, "home-default-seccomp", provider, CONTAINER_UID)
    container = docker.run(*run_args(compose_service(), home, port, docker, seccomp=False))
    wait_for("/health", lambda: http("GET", f"{base}/health", timeout=2)[0] == 200)
    wait_for("the sandbox verdict", lambda: "sandbox" in http("GET", f"{base}/ready", timeout=2)[1])
    status, ready = http("GET", f"{base}/ready")
    reason = json.loads(ready).get("reason", "")
    check(status == 503 and "agent mode is refused" in reason and "namespace" in reason,
          f"Docker's default seccomp: /ready 503: {reason[:110]}...")  # fmt: skip
    hello = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    status, text = http("POST", f"{base}/v1/chat/completions", hello)
    check(status == 503 and json.loads(text)["error"]["code"] == "sandbox_unavailable",
          "an agent request is refused by name (503 sandbox_unavailable)")  # fmt: skip
    lines = [line for line in logs(docker, container).splitlines() if "sandbox does not work here" in line]
    check(len(lines) == 1, "one log line says why and how to fix it")
    doctor = docker("exec", container, "python", "-m", "app", "doctor", check=False)
    check(doctor.returncode == 1 and "FAIL sandbox:" in doctor.stdout, "doctor in the container: FAIL sandbox")
    wait_for("Docker's health status 'unhealthy'", lambda: health(docker, container) == "unhealthy", 60)
    check(True, "Docker reports the container unhealthy (health follows readiness)")
    clean_log(docker, container)


def sealed_workers(docker: Docker, provider: FakeProvider, scratch: Path) -> None:
    """With `systempaths=unconfined` (opt-in: docs/DOCKER.md) a sealed worker can mount a /proc of its own; the
    container's default masks forbid that, and its workers keep the permission profile (the_service)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = fake_home(scratch, "home-sealed", provider, CONTAINER_UID)
    extra = ["--security-opt", "systempaths=unconfined", "-e", f"DOCKER_TEST_ENV_SECRET={ENV_MARKER}"]
    container = docker.run(*extra, *run_args(compose_service(), home, port, docker))
    wait_for("/ready", lambda: http("GET", f"{base}/ready", timeout=2)[0] == 200)
    check(any("app-server workers sealed:" in line for line in logs(docker, container).splitlines()),
          "systempaths=unconfined: the app-server workers are sealed")  # fmt: skip
    secret = shell_turn(base, provider, "docker-sealed-secret", "cat /home/codex/.codex/auth.json")
    check(AUTH_MARKER not in secret and "Permission denied" in secret,
          "sealed: the agent cannot read the operator's login (auth.json)")  # fmt: skip
    environ = shell_turn(base, provider, "docker-sealed-environ", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'")
    check(ENV_MARKER not in environ and "PATH=" in environ, "sealed: nor a secret of the container's environment")
    check(streamed_chat(base) == "pong", "sealed: a streamed chat completion answers 'pong'")
    clean_log(docker, container)


def root_owned_home(docker: Docker, scratch: Path) -> None:
    home = scratch / "home-root-owned"  # as Docker creates a missing mount source
    home.mkdir()
    container = docker.run(*run_args(compose_service(), home, free_port(), docker))
    if os.getuid() != 0:
        home.chmod(0o555)

    def state() -> dict[str, Any]:
        return json.loads(docker("inspect", container).stdout)[0]["State"]

    wait_for("the container to stop", lambda: state()["Status"] == "exited", 60)
    lines = [line for line in logs(docker, container).splitlines() if line.strip()]
    words = lines[0] if len(lines) == 1 else ""
    check(state()["ExitCode"] == 2 and "is not writable by uid 1000" in words and "Fix:" in words,
          f"a root-owned CODEX_HOME: exit 2 and one line: {words}")  # fmt: skip


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="codex-wrapper-docker-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    started = time.monotonic()
    try:
        docker = Docker()
    except DockerTestFailed as exc:
        print(f"docker-test: {exc}", file=sys.stderr)
        return 1
    if docker("version", check=False).returncode != 0:
        print("docker-test: no Docker engine answers (start dockerd; see docs/DOCKER.md)", file=sys.stderr)
        return 1
    provider = FakeProvider().start()
    try:
        with scratch_dir() as scratch:
            bundle = ca_bundle()
            build(docker, bundle)
            check_image_contents(docker, bundle)
            the_service(docker, provider, scratch)
            sealed_workers(docker, provider, scratch)
            default_seccomp(docker, provider, scratch)
            root_owned_home(docker, scratch)
    except (DockerTestFailed, subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        for container in docker.containers[-1:]:
            print(f"---- log of {container[:12]} ----\n{logs(docker, container)[-3000:]}", file=sys.stderr)
        return 1
    finally:
        docker.cleanup()
        provider.stop()
    FIGURES["docker-test"] = f"{time.monotonic() - started:.0f} s in all"
    print("docker-test passed: " + "; ".join(f"{name}: {value}" for name, value in FIGURES.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
