"""Starting OpenWebUI offline on 127.0.0.1 and a free port, connected to a running gateway as docs/OPENWEBUI.md says."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness import REPO, free_port

OPENWEBUI = REPO / ".e2e" / "openwebui" / "bin" / "open-webui"
START_TIMEOUT = 240.0  # a cold start imports torch, chromadb and the rest on a shared 2-core machine

# What keeps OpenWebUI from reaching the network: no Ollama, no Hugging Face downloads (OFFLINE_MODE also turns off
# the version check), no telemetry. Everything about chats stays at OpenWebUI's defaults.
OFFLINE = {
    "OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ENABLE_OLLAMA_API": "false",
    "ENABLE_VERSION_UPDATE_CHECK": "false",
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "ANONYMIZED_TELEMETRY": "false",
}


class StartError(RuntimeError):
    """OpenWebUI exited or did not answer /health in time; the message ends with its log."""


@dataclass
class RunningOpenWebUI:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and whatever it started, by its process group id."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # a child left behind by a clean exit


@contextmanager
def run_openwebui(gateway_url: str, api_key: str, workdir: Path) -> Iterator[RunningOpenWebUI]:
    """OpenWebUI with one OpenAI connection (base URL + key) to the gateway, its data in `workdir`."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OLLAMA_", "WEBUI_"))},
        **OFFLINE,
        "DATA_DIR": str(workdir / "data"),
        "WEBUI_SECRET_KEY": "0123456789abcdef" * 4,  # as `openssl rand -hex 32` makes; not 44 long (a Fernet key)
        "OPENAI_API_BASE_URL": f"{gateway_url}/v1",
        "OPENAI_API_KEY": api_key,
    }
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    log_path = workdir / "openwebui.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(OPENWEBUI), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningOpenWebUI(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise StartError(f"OpenWebUI exited {process.returncode}:\n{running.log()[-4000:]}")
            try:
                if httpx.get(f"{running.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise StartError(f"OpenWebUI did not start in {START_TIMEOUT:.0f} s:\n{running.log()[-4000:]}")
            time.sleep(0.5)
        yield running
    finally:
        _stop(process)
