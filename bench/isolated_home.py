"""`codex exec` latency with a user CODEX_HOME that has MCP servers configured, beside CODEX_ISOLATED_HOME=1.

The MCP servers are stand-ins for what users install: a process that takes 1 s to fail its handshake.
Run by hand: `.venv/bin/python -m bench.isolated_home`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tomli_w

from app.codex.home import prepare_codex_home
from app.config import Settings
from bench.latency import summary, time_exec
from tests.fakes.provider import FakeProvider
from tests.harness import REPO, scratch_dir, write_codex_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--servers", type=int, default=3)
    args = parser.parse_args()
    provider = FakeProvider().start()
    with scratch_dir() as tmp:
        root = Path(tmp)
        workdir = root / "work"
        workdir.mkdir()
        user_home = write_codex_home(root / "user-home", provider.base_url)
        servers = {
            f"slow{n}": {"command": sys.executable, "args": ["-c", "import time; time.sleep(1)"]}
            for n in range(args.servers)
        }
        config = (user_home / "config.toml").read_text() + tomli_w.dumps({"mcp_servers": servers})
        (user_home / "config.toml").write_text(config)
        profile = root / "profile"
        write_codex_home(profile, provider.base_url)
        (profile / "config.toml").rename(profile / "codex_config.toml")
        settings = Settings(
            _env_file=None,
            codex_workdir=workdir,
            codex_config_dir=user_home,
            codex_wrapper_profile_dir=profile,
            codex_isolated_home=True,
            codex_isolated_home_dir=root / "isolated",
        )
        isolated = prepare_codex_home(settings)
        launcher = str(REPO / "node_modules" / ".bin" / "codex")
        label = f"user CODEX_HOME with {args.servers} MCP servers"
        print(summary(label, time_exec(launcher, user_home, workdir, args.runs)))
        print(summary("CODEX_ISOLATED_HOME=1", time_exec(launcher, isolated, workdir, args.runs)))
    provider.stop()


if __name__ == "__main__":
    main()
