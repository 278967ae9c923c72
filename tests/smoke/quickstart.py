"""CI's first stage: the README's quick start, run as a newcomer runs it, against the fake model provider.

`python3 -m tests.smoke.quickstart` (standard library only, so nothing from the dev requirements can help):
1. `make install`: what `make run` installs (requirements.txt and `npm ci`, no dev requirements);
2. the README's serve block (`make run`) in the background, with a CODEX_HOME that points Codex at the fake
   provider, on a free port;
3. wait for /ready;
4. each command of the README's try block (curl), with the port changed, its output checked;
5. stop the server's process group and check nothing of it is left.
Exits 1 naming the step that failed, with the server's log. README.md and README.ja.md must show the same commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.fakes.provider import FakeProvider

REPO = Path(__file__).resolve().parents[2]
READMES = (REPO / "README.md", REPO / "README.ja.md")
README_PORT = "8000"
READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0


class SmokeFailed(Exception):
    """A step of the quick start did not do what the README says."""


def readme_blocks(path: Path) -> dict[str, list[str]]:
    """The shell blocks after `<!-- smoke: NAME -->` markers, as commands (backslash continuations joined)."""
    text = path.read_text()
    blocks: dict[str, list[str]] = {}
    for name, body in re.findall(r"<!-- smoke: (\w+) -->\s*```sh\n(.*?)```", text, flags=re.DOTALL):
        commands, current = [], ""
        for line in body.splitlines():
            line = line.split("  # ")[0].rstrip() if not current else line.rstrip()
            current += line.removesuffix("\\") + (" " if line.endswith("\\") else "")
            if not line.endswith("\\"):
                if current.strip():
                    commands.append(current.strip())
                current = ""
        blocks[name] = commands
    return blocks


def quickstart() -> dict[str, list[str]]:
    english, japanese = (readme_blocks(path) for path in READMES)
    if set(english) != {"serve", "try"}:
        raise SmokeFailed(f"README.md: expected smoke blocks 'serve' and 'try', found {sorted(english)}")
    if english != japanese:
        raise SmokeFailed("README.md and README.ja.md show different quick-start commands")
    return english


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_codex_home(home: Path, base_url: str) -> None:
    """config.toml sending Codex to the fake provider (written by hand: tomli-w is not in the standard library)."""
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        'model = "fake-model"\nmodel_provider = "fake"\n\n[model_providers.fake]\n'
        f'name = "fake"\nbase_url = {json.dumps(base_url)}\nwire_api = "responses"\n'
        "request_max_retries = 0\nstream_max_retries = 0\n"
    )


def server_environment(tmp: Path, port: int) -> dict[str, str]:
    """This environment without the gateway's settings, plus a fake-provider CODEX_HOME and scratch dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "PROXY_", "RATE_LIMIT"))}
    profile = tmp / "profile"
    profile.mkdir()
    env.update(
        PORT=str(port),
        CODEX_CONFIG_DIR=str(tmp / "codex-home"),
        CODEX_WORKDIR=str(tmp / "workspace"),
        CODEX_DATA_DIR=str(tmp / "data"),
        CODEX_WRAPPER_PROFILE_DIR=str(profile),  # a developer's own overrides stay out
        CODEX_ENV_FILE=str(tmp / "no.env"),  # and so does their .env
    )
    return env


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SmokeFailed(f"`make run` exited with status {server.returncode} before /ready")
        try:
            status, body = get_json(f"{base}/ready")
            if status == 200:
                return
            last = f"{status} {body}"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise SmokeFailed(f"/ready not 200 after {READY_TIMEOUT:.0f} s: {last}")


def check_ready(output: str) -> str:
    if json.loads(output).get("status") != "ready":
        raise SmokeFailed(f"/ready answered {output!r}")
    return "ready"


def check_chat(output: str) -> str:
    content = json.loads(output)["choices"][0]["message"]["content"]
    if not content:
        raise SmokeFailed(f"empty answer: {output!r}")
    return content


def check_stream(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("data: ")]
    if not lines or lines[-1] != "data: [DONE]":
        raise SmokeFailed(f"the stream did not end with data: [DONE]: {output[-300:]!r}")
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
    if not text:
        raise SmokeFailed(f"no content in the stream: {output[-300:]!r}")
    return text


def checker(command: str) -> Callable[[str], str]:
    if "/ready" in command:
        return check_ready
    if "/v1/chat/completions" in command:
        return check_stream if '"stream": true' in command else check_chat
    raise SmokeFailed(f"the smoke test does not know how to check: {command}")


def run_step(name: str, command: list[str] | str, env: dict[str, str] | None = None) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run(
        command, shell=isinstance(command, str), executable="/bin/bash" if isinstance(command, str) else None,
        cwd=REPO, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT if name != "install" else None,
    )  # fmt: skip
    if done.returncode != 0:
        raise SmokeFailed(f"{name}: exit status {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout, time.monotonic() - started


def codex_processes(codex_home: Path) -> list[int]:
    """Live processes started with this CODEX_HOME (Codex runs in process groups of its own)."""
    marker = f"CODEX_HOME={codex_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(server: subprocess.Popen[bytes], codex_home: Path) -> None:
    """SIGTERM to the process group `make run` leads (make, the gateway); then neither it nor Codex may be left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        raise SmokeFailed("`make run` did not exit within 20 s of SIGTERM") from None
    deadline = time.monotonic() + 10
    while (group_alive(server.pid) or codex_processes(codex_home)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(server.pid) or codex_processes(codex_home):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        raise SmokeFailed(f"left running 10 s after `make run` exited: {codex_processes(codex_home)}")


def main() -> int:
    timings: dict[str, float] = {}
    provider = FakeProvider().start()
    server: subprocess.Popen[bytes] | None = None
    # outside /tmp: the gateway refuses a CODEX_HOME or data folder where Codex's sandbox could write
    scratch_root = Path.home() / ".cache"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codex-wrapper-smoke-", dir=scratch_root) as scratch:
        tmp = Path(scratch)
        log_path = tmp / "server.log"
        try:
            blocks = quickstart()
            fake_codex_home(tmp / "codex-home", provider.base_url)
            port = free_port()
            env = server_environment(tmp, port)
            _, timings["install"] = run_step("install", ["make", "install"], env)
            started = time.monotonic()
            [serve] = blocks["serve"]
            with log_path.open("wb") as log:
                server = subprocess.Popen(
                    ["/bin/bash", "-c", serve], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            wait_ready(f"http://127.0.0.1:{port}", server)
            timings["ready"] = time.monotonic() - started
            for command in blocks["try"]:
                output, took = run_step(command, command.replace(f":{README_PORT}", f":{port}"), env)
                print(f"smoke: {command[:70]}... -> {checker(command)(output)!r} ({took:.1f} s)")
            stop(server, tmp / "codex-home")
            server = None
            timings["after install"] = time.monotonic() - started
        except (SmokeFailed, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
            print(f"smoke: FAILED: {exc}", file=sys.stderr)
            if log_path.exists():
                print("---- server log (tail) ----", file=sys.stderr)
                print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            return 1
        finally:
            if server is not None:
                with contextlib.suppress(SmokeFailed, ProcessLookupError):
                    stop(server, tmp / "codex-home")
            provider.stop()
    print("smoke: passed: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
