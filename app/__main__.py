"""`python -m app`: serve the gateway on HOST:PORT (127.0.0.1:8000 by default)."""

from __future__ import annotations

import sys

import uvicorn

from app.config import ConfigError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"codex-wrapper: {exc}", file=sys.stderr)
        return 2
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
