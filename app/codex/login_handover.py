"""The login a sealed app-server worker gets in memory (`account/login/start`), never as a file it could read.

A sealed worker (app/policy/worker_seal.py) runs with `cli_auth_credentials_store = "ephemeral"` and no auth.json
in its view of CODEX_HOME: Codex then keeps the login only in memory. The gateway reads auth.json itself and hands
over an API key at each worker start, and again when auth.json changes. A ChatGPT login is not handed over: the
app-server takes external ChatGPT tokens only through an API it marks "for OpenAI internal use only", and its
refresh flow could not be tested here. A ChatGPT login keeps the permission profile instead (unsealed workers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.codex.file_stamp import Stamp, stamp

API_KEY, CHATGPT, UNREADABLE = "apiKey", "chatgpt", "unreadable"


@dataclass(frozen=True)
class Handover:
    kind: str | None  # API_KEY, CHATGPT, UNREADABLE, or None: auth.json holds no login
    stamp: Stamp
    params: dict[str, Any] | None = None  # account/login/start's, for an API key

    @property
    def sealable(self) -> bool:
        """Whether a sealed worker can have this login: none, or one handed over in memory."""
        return self.kind in (None, API_KEY)


def read_handover(codex_home: Path) -> Handover:
    """What auth.json holds, as Codex reads it: `auth_mode` when set, else tokens mean a ChatGPT login."""
    path = codex_home / "auth.json"
    seen = stamp((path,))
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Handover(None, seen)
    except (OSError, ValueError):
        return Handover(UNREADABLE, seen)
    if not isinstance(data, dict):
        return Handover(UNREADABLE, seen)
    key, mode = data.get("OPENAI_API_KEY"), str(data.get("auth_mode") or "").lower()
    if data.get("tokens") and mode != "apikey":
        return Handover(CHATGPT, seen)
    if isinstance(key, str) and key:
        return Handover(API_KEY, seen, {"type": "apiKey", "apiKey": key})
    return Handover(None, seen)
