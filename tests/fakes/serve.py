"""Run the fake provider in its own process (for benchmarks): prints its base URL, serves until stdin closes.

`python -m tests.fakes.serve paced=20x0.01` registers extra scripts: name=DELTASxDELAY, or name=call:FUNCTION
(the model calls FUNCTION with `{}`, then answers with 20 deltas once the output comes back).
"""

from __future__ import annotations

import sys

from tests.fakes.provider import FakeProvider, Script


def main() -> None:
    provider = FakeProvider().start()
    for spec in sys.argv[1:]:
        name, _, shape = spec.partition("=")
        if shape.startswith("call:"):
            call = {"name": shape.removeprefix("call:"), "arguments": "{}"}
            provider.script(name, Script(calls=[[call]], deltas=[f"tok{n} " for n in range(20)]))
            continue
        count, _, delay = shape.partition("x")
        provider.script(name, Script(deltas=[f"tok{n} " for n in range(int(count))], delay=float(delay or 0)))
    print(provider.base_url, flush=True)
    sys.stdin.read()
    provider.stop()


if __name__ == "__main__":
    main()
