"""Chat mode: Codex as a plain model, with no shell, workspace, tools or agent prompt (both engines use this)."""

from __future__ import annotations

from typing import Any

# Measured on Codex 0.169 against the fake provider: the prompt shrinks from ~21 KB to ~0.6 KB and 9 tools to 2
# (request_user_input and view_image cannot be switched off; the gateway declines the first, the second has no files).
CHAT_BASE_INSTRUCTIONS = "You are a helpful assistant."
_FEATURES_OFF = (
    "shell_tool", "unified_exec", "multi_agent", "goals", "apps", "plugins", "image_generation",
    "skill_search", "tool_suggest", "sleep_tool", "hooks",
)  # fmt: skip
CHAT_CONFIG: dict[str, Any] = {
    **{f"features.{name}": False for name in _FEATURES_OFF},
    "web_search": "disabled",
    "skills.include_instructions": False,
    "include_permissions_instructions": False,
}
