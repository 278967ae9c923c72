"""A Responses `web_search` tool: Codex's own web search for the turn, where the operator allows it.

CODEX_CLIENT_WEB_SEARCH is the most a request may get: `off` (the default: the tool is ignored and named
`tools.web_search`), `cached` (Codex's cached web search: results from the provider's index, no live fetch) or
`live`. Live search is never more than the turn's sandbox may do: it needs network access for the turn
(workspace-write with network on); otherwise, or with `external_web_access: false`, the turn searches `cached`
(a live request run cached is named `tools.web_search.external_web_access=true->false`). Codex takes no domain
filters, location or context size per turn: those are named as ignored.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.turn import RunPolicy

IGNORED_OPTIONS = ("filters", "user_location", "search_context_size", "search_content_types")
SEARCH_INCLUDES = ("web_search_call.results", "web_search_call.action.sources")  # Codex reports neither


def search_includes(tool: dict[str, Any] | None, include: Any) -> list[str]:
    """With a web_search tool, the `include` values for its details that are not given (named as ignored)."""
    asked = include if tool is not None and isinstance(include, list) else []
    return [f"include={value}" for value in SEARCH_INCLUDES if value in asked]


def web_search_mode(
    tool: dict[str, Any] | None, settings: Settings, policy: RunPolicy, ignored: list[str], adjusted: list[str]
) -> str | None:
    """The turn's `web_search` mode (cached or live) for the request's web_search tool; None: none asked or allowed.
    What is not honoured goes to `ignored` / `adjusted`."""
    if tool is None:
        return None
    if settings.codex_client_web_search == "off":
        ignored.append("tools.web_search")
        return None
    for option in IGNORED_OPTIONS:
        if tool.get(option) not in (None, [], {}):
            ignored.append(f"tools.web_search.{option}")
    if tool.get("external_web_access") is False:
        return "cached"
    if settings.codex_client_web_search == "live" and policy.network_access:
        return "live"
    adjusted.append("tools.web_search.external_web_access=true->false")
    return "cached"
