"""The reliability suite's report: figures the tests measure, printed at the end of the run (docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

SCALE = max(1, int(os.environ.get("RELIABILITY_SCALE", "1")))  # `make soak` runs with 10
FIGURES: dict[str, Any] = {}


def record(name: str, **figures: Any) -> None:
    FIGURES[name] = figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section(f"reliability figures (RELIABILITY_SCALE={SCALE})")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(figures)}")
    path = Path(os.environ.get("RELIABILITY_REPORT", Path(__file__).parent / "last-run.json"))
    path.write_text(json.dumps({"scale": SCALE, **FIGURES}, indent=2))
