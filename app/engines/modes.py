"""Configuration every gateway turn gets, and chat mode: Codex as a plain model (both engines use these)."""

from __future__ import annotations

from typing import Any

# Every turn: no per-thread shell snapshot. Each one starts a login shell that lingers; measured on a warm
# app-server, 60 agent threads left 150 processes and 600 MB behind with it, 1 process and ~190 MB without.
# Commands still run in a login shell (`bash -lc`), so profile settings still apply.
# No sub-agents: on Codex 0.169 a `spawn_agent` call's `local_image` input is read by Codex itself, past the
# sandbox's permission profile (measured: an image in a denied folder reached the model).
# The turn's working directory is its project root (no walk up for `.git`): under a permission profile that denies
# paths, Codex checks each ancestor through a sandboxed helper, ~0.1 s apiece (measured: exec 0.78 s -> 0.53 s per
# turn at depth 5). AGENTS.md is read from the working directory itself.
BASE_CONFIG: dict[str, Any] = {
    "features.shell_snapshot": False,
    "features.multi_agent": False,
    "project_root_markers": [],
}

# Chat mode, measured on Codex 0.169 against the fake provider: the prompt shrinks from ~21 KB to ~0.6 KB, 9 tools to 1
# (request_user_input cannot be switched off; the gateway declines it). `features.view_image` off removes the tool
# that reads a host file by path (exec would serve it; app-server threads without environments refuse it anyway).
CHAT_BASE_INSTRUCTIONS = "You are a helpful assistant."
_FEATURES_OFF = (
    "shell_tool", "unified_exec", "multi_agent", "goals", "apps", "plugins", "image_generation",
    "skill_search", "tool_suggest", "sleep_tool", "hooks", "view_image",
)  # fmt: skip
CHAT_CONFIG: dict[str, Any] = {
    **{f"features.{name}": False for name in _FEATURES_OFF},
    "web_search": "disabled",
    "skills.include_instructions": False,
    "include_permissions_instructions": False,
}
