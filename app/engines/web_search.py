"""A web search the model ran, from Codex's item (app-server `webSearch`, exec `web_search`) to the Responses
`web_search_call` action: search {query, queries}, open_page {url}, find_in_page {url, pattern}."""

from __future__ import annotations

from typing import Any

from app.turn import WebSearch

_KINDS = {"search": "search", "openPage": "open_page", "open_page": "open_page", "findInPage": "find_in_page"}
_KINDS["find_in_page"] = "find_in_page"


def web_search_event(item: dict[str, Any]) -> WebSearch:
    given = item.get("action")
    raw: dict[str, Any] = given if isinstance(given, dict) else {}
    kind = _KINDS.get(str(raw.get("type")), "search")
    if kind == "search":
        action: dict[str, Any] = {"type": "search", "query": raw.get("query") or item.get("query") or ""}
        if isinstance(raw.get("queries"), list):
            action["queries"] = [str(query) for query in raw["queries"]]
        return WebSearch(action)
    action = {"type": kind, "url": raw.get("url")}
    if kind == "find_in_page":
        action["pattern"] = raw.get("pattern") or ""
    return WebSearch(action)
