"""Startup check that the installed Codex speaks the app-server protocol this engine was written for."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from app.codex.binary import CodexBinary

CLIENT_METHODS = {
    "initialize",
    "thread/start",
    "thread/inject_items",
    "turn/start",
    "turn/interrupt",
    "thread/unsubscribe",
    "account/login/start",  # a sealed worker's login, in memory (app/codex/login_handover.py)
    "account/logout",
}
NOTIFICATIONS = {
    "item/agentMessage/delta",
    "item/reasoning/summaryTextDelta",
    "item/completed",
    "thread/tokenUsage/updated",
    "turn/completed",
    "error",
}
SERVER_REQUESTS = {"item/tool/call"}
PARAMS = {
    "v2/ThreadStartParams.json": {
        "model", "cwd", "sandbox", "approvalPolicy", "ephemeral", "baseInstructions",
        "config", "environments", "dynamicTools", "experimentalRawEvents",
    },
    "DynamicToolCallParams.json": {"threadId", "turnId", "callId", "tool", "arguments"},
    # internal notifications (not in ServerNotification's list) that experimentalRawEvents turns on
    "v2/RawResponseItemCompletedNotification.json": {"threadId", "turnId", "item"},
    "v2/RawResponseCompletedNotification.json": {"threadId", "turnId", "usage"},
    "v2/TurnStartParams.json": {"threadId", "input", "effort", "summary"},
    "v2/ThreadInjectItemsParams.json": {"threadId", "items"},
    "v2/TurnInterruptParams.json": {"threadId", "turnId"},
}  # fmt: skip


class ProtocolDrift(Exception):
    """The app-server protocol lacks something the engine uses."""


def _methods(schema: dict[str, Any]) -> set[str]:
    return {
        m
        for variant in schema.get("oneOf", [])
        for m in variant.get("properties", {}).get("method", {}).get("enum", [])
    }


def missing_from(schema_dir: Path) -> list[str]:
    """What the engine uses that the generated schema bundle does not have."""
    missing: list[str] = []
    client = _methods(json.loads((schema_dir / "ClientRequest.json").read_text()))
    missing += [f"request {m}" for m in sorted(CLIENT_METHODS - client)]
    notes = _methods(json.loads((schema_dir / "ServerNotification.json").read_text()))
    missing += [f"notification {m}" for m in sorted(NOTIFICATIONS - notes)]
    requests = schema_dir / "ServerRequest.json"
    server = _methods(json.loads(requests.read_text())) if requests.exists() else set()
    missing += [f"server request {m}" for m in sorted(SERVER_REQUESTS - server)]
    for name, fields in PARAMS.items():
        path = schema_dir / name
        props = set(json.loads(path.read_text()).get("properties", {})) if path.exists() else set()
        missing += [f"{path.stem}.{field}" for field in sorted(fields - props)]
    return missing


def check_protocol(binary: CodexBinary, env: dict[str, str]) -> None:
    """Generate Codex's own schema (~0.1 s) and compare; raise ProtocolDrift naming the version and the gaps."""
    with tempfile.TemporaryDirectory(prefix="codex-schema-") as out:
        try:
            done = subprocess.run(
                [str(binary.path), "app-server", "generate-json-schema", "--experimental", "--out", out],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            detail = done.stderr.decode(errors="replace").strip()[-300:] or f"exit status {done.returncode}"
            missing = missing_from(Path(out)) if done.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:  # ValueError: unreadable JSON
            detail, missing = str(exc), None
        if missing is None:
            raise ProtocolDrift(f"codex {binary.version} cannot describe its app-server protocol: {detail}")
    if missing:
        raise ProtocolDrift(
            f"codex {binary.version} app-server protocol differs from what this gateway expects "
            f"(missing: {', '.join(missing)}); install @openai/codex 0.169.0 or set CODEX_ENGINE=exec"
        )
