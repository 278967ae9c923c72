"""Starting the real gateway (a uvicorn subprocess) against a CODEX_HOME that points at the fake provider."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import tomli_w

from app.policy.worker_seal import home_view

REPO = Path(__file__).resolve().parent.parent
FAKE_MODEL = "fake-model"
SERVE_COMMAND = ("python", "-m", "app", "serve")  # what the tests start, and the Dockerfile's CMD


def write_codex_home(home: Path, base_url: str, **extra: object) -> Path:
    """A CODEX_HOME whose config.toml sends Codex to the fake provider with Codex's own retries off."""
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "model": FAKE_MODEL,
        "model_provider": "fake",
        "model_providers": {
            "fake": {
                "name": "fake",
                "base_url": base_url,
                "wire_api": "responses",
                "request_max_retries": 0,
                "stream_max_retries": 0,
            }
        },
        **extra,
    }
    (home / "config.toml").write_text(tomli_w.dumps(config))
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environment(**settings: str) -> dict[str, str]:
    """The test runner's environment without any gateway or Codex setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "PROXY_", "RATE_LIMIT"))}
    env["CODEX_ENV_FILE"] = str(REPO / "tests" / "no-such.env")
    env.update(settings)
    return env


def scratch_root() -> Path:
    """Where tests and benchmarks keep their folders: outside /tmp and $TMPDIR, which Codex's sandbox can write, so
    a gateway whose CODEX_HOME and data live there may start (app/policy/layout.py refuses anything else)."""
    for root in (Path.home() / ".cache" / "codex-wrapper-tests", REPO / ".pytest-tmp"):
        real = root.resolve()
        if not any(real.is_relative_to(Path(t).resolve()) for t in ("/tmp", tempfile.gettempdir())):
            root.mkdir(parents=True, exist_ok=True)
            return root
    raise RuntimeError("no folder outside /tmp and $TMPDIR for tests: set PYTEST_DEBUG_TEMPROOT")


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A benchmark's own folder under scratch_root(), removed when it is done."""
    return tempfile.TemporaryDirectory(dir=scratch_root())


def codex_processes(codex_home: Path, pool: bool = False) -> list[int]:
    """PIDs of live processes (Codex, its children and its sandbox helpers) started with this CODEX_HOME; the pool's
    long-lived `codex app-server` workers (and the bubblewrap processes a sealed one runs under) only with
    `pool=True`."""
    markers = {f"CODEX_HOME={home}".encode() for home in (codex_home, home_view(codex_home))}  # a sealed worker's too
    helpers = f"{codex_home}/tmp/arg0".encode()  # sandbox helpers keep only PATH, which names the home's arg0 folder
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if state == "Z" or (not markers & set(environ.split(b"\0")) and helpers not in environ):
            continue
        sealer = argv[0].endswith(b"/bwrap") and str(home_view(codex_home)).encode() in argv  # a sealed worker's
        if pool or (argv[1:2] != [b"app-server"] and not sealer):
            found.append(int(entry.name))
    return found


def app_server_workers(codex_home: Path) -> list[int]:
    """PIDs of the pool's `codex app-server` workers on this CODEX_HOME (not their turns' short-lived helpers)."""
    workers = []
    for pid in codex_processes(codex_home, pool=True):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [b"app-server"]:
                workers.append(pid)
    return sorted(workers)


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def wait_no_codex(codex_home: Path, timeout: float = 5.0) -> list[int]:
    """Poll until no per-request Codex process of this CODEX_HOME is left; return what is left at the deadline."""
    deadline = time.monotonic() + timeout
    while (left := codex_processes(codex_home)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@dataclass
class RunningGateway:
    base_url: str
    codex_home: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, api_key: str = "unused", **kwargs: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=api_key, max_retries=0, **kwargs)

    def http(self, timeout: float = 30, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout, **kwargs)

    def stream_chat_lines(self, content: str, **extra: object) -> tuple[int, list[str]]:
        """POST a streaming chat request with plain httpx; the status and the non-empty SSE lines."""
        body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": content}], "stream": True, **extra}
        with self.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
            return response.status_code, [line for line in response.iter_lines() if line]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_gateway(codex_home: Path, workdir: Path, log_path: Path, **settings: str) -> Iterator[RunningGateway]:
    port = free_port()
    no_profile = log_path.parent / f"{log_path.stem}-profile"  # a developer's own overrides stay out of tests
    no_profile.mkdir(exist_ok=True)
    defaults = {
        "CODEX_CONFIG_DIR": str(codex_home),
        "CODEX_WORKDIR": str(workdir),
        "CODEX_WRAPPER_PROFILE_DIR": str(no_profile),
        "CODEX_DATA_DIR": str(log_path.parent / f"{log_path.stem}-data"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    env = clean_environment(**{**defaults, **settings})
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    gateway = RunningGateway(f"http://127.0.0.1:{port}", codex_home, proc, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited {proc.returncode}:\n{gateway.log()}")
            try:
                if httpx.get(f"{gateway.base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start:\n{gateway.log()}")
            time.sleep(0.05)
        yield gateway
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
