"""A real redis-server (or valkey-server) for tests: 127.0.0.1, a free port, its own folder, stopped by pid.

Persistence is on (append-only file, fsync on every write), so a restart keeps what was written.
`make test` installs Debian's redis-server when neither binary is found.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.harness import free_port


def server_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found is None:
        raise RuntimeError("redis-server not found: run `make test` (it installs it) or `apt-get install redis-server`")
    return found


def resp(*args: str) -> bytes:
    """One command in RESP."""
    return (f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)).encode()


class RedisServer:
    def __init__(self, folder: Path, appendfsync: str = "always", password: str = "") -> None:
        self.folder = folder
        self.password = password  # set: the default user needs it (requirepass, an ACL password)
        self.appendfsync = appendfsync  # always: nothing acknowledged is lost; everysec (Redis' default): up to 1 s
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    def start(self) -> RedisServer:
        argv = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        argv += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        argv += ["--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "", "--daemonize", "no"]
        argv += ["--logfile", str(self.folder / "redis.log")]
        argv += ["--requirepass", self.password] if self.password else []
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command in RESP, its raw reply (for tests that look inside)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            if self.password:
                sock.sendall(resp("AUTH", self.password))
                assert sock.recv(64).startswith(b"+OK")
            sock.sendall(resp(*args))
            return sock.recv(65536)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # SIGTERM: Redis flushes the append-only file and exits
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
