"""`python -m app.healthcheck`: exit 0 when the gateway on this machine is ready (the image's HEALTHCHECK).

It asks GET /ready on PORT (as the server reads it from the environment) and prints why when it is not ready,
which `docker inspect` shows. Standard library only: it runs every 30 s and must start fast.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def ready_url(env: dict[str, str], path: str = "/ready") -> str:
    """The URL of `path` on the gateway that HOST and PORT in `env` describe (a wildcard HOST: loopback)."""
    host = env.get("HOST", "127.0.0.1").strip()
    host = _WILDCARDS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{env.get('PORT', '8000').strip() or '8000'}{path}"


def check(url: str, timeout: float = 4.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            reason = json.loads(body).get("reason") or body
        except (ValueError, AttributeError):
            reason = body
        return False, f"{exc.code} from {url}: {reason}"
    except OSError as exc:
        return False, f"no answer from {url}: {exc}"


def main() -> int:
    ok, detail = check(ready_url(dict(os.environ)))
    print(detail[:2000])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
