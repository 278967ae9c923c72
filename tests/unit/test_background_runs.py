"""A background run keeps each event as it was when it happened: replayed later, it must not show what came after."""

from __future__ import annotations

from typing import Any

from app.api.response_events import ResponseBuilder
from app.background.runs import Run


async def test_a_runs_events_are_kept_as_they_were_when_added() -> None:
    builder = ResponseBuilder({"model": "m"})
    builder.status = "queued"
    run = Run(None, "owner", builder, None, None, None)  # type: ignore[arg-type]  # only add() is used here
    run.add(builder.created())
    added: list[dict[str, Any]] = builder.on_text("w0 ")
    run.add(added)
    run.add(builder.on_text("w1 "))  # the builder goes on changing the items it handed out
    created, item_added = run.events[0], run.events[1]
    assert created["type"] == "response.created" and created["response"]["output"] == []
    assert item_added["type"] == "response.output_item.added"
    assert item_added["item"]["content"] == []  # not the text that came later
