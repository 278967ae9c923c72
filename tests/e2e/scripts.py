"""What the fake model says in the OpenWebUI run, and a provider that also answers OpenWebUI's background tasks."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.provider import FakeProvider, Script, last_user_text, request_text

CLOCK_TOOL = "get_current_timestamp"  # OpenWebUI's built-in time tool, offered by its default (native) function calling
STREAM_WORDS = [f"word{n} " for n in range(40)]
THOUGHT = ["Weighing ", "the two ", "colours ", "against ", "each other."]

SCRIPTS = {
    # paced, so the browser can watch the answer grow
    "stream": Script(deltas=STREAM_WORDS, delay=0.15),
    "think": Script(reasoning=THOUGHT, deltas=["Blue ", "is ", "calmer."], delay=0.1),
    "recall": Script(deltas=["You ", "asked ", "me ", "to ", "stream ", "words."]),
    "clock": Script(tool_call={"name": CLOCK_TOOL, "arguments": "{}"}, deltas=["The ", "clock ", "tool ", "answered."]),
}

# OpenWebUI's title, tags and follow-up generation (its defaults) send "### Task:" prompts through the same model
TASK_ANSWERS = {
    '"follow_ups"': {"follow_ups": ["Tell me more"]},
    '"tags"': {"tags": ["General"]},
    '"title"': {"title": "Gateway E2E"},
}


def is_task(body: dict[str, Any]) -> bool:
    return "### Task:" in last_user_text(body)


class OpenWebUIProvider(FakeProvider):
    """The fake provider, answering OpenWebUI's background task prompts with the JSON they ask for."""

    def __init__(self) -> None:
        super().__init__()
        for name, script in SCRIPTS.items():
            self.script(name, script)

    def pick(self, body: dict[str, Any]) -> tuple[Script, int]:
        if is_task(body):  # its chat history quotes the chat's SCRIPT marker: that script must not answer it
            text = last_user_text(body)
            answer = next((answer for key, answer in TASK_ANSWERS.items() if key in text), {})
            return Script(deltas=[json.dumps(answer)]), 1
        return super().pick(body)

    def chat_requests(self, marker: str) -> list[dict[str, Any]]:
        """The requests of chat turns (not background tasks) whose last user text carries `SCRIPT:<marker>`."""
        return [b for b in list(self.requests) if not is_task(b) and f"SCRIPT:{marker}" in last_user_text(b)]


def tool_names(body: dict[str, Any]) -> list[str]:
    return [str(t.get("name")) for t in body.get("tools", []) if t.get("type") == "function"]


def carries(body: dict[str, Any], *texts: str) -> bool:
    whole = request_text(body)
    return all(text in whole for text in texts)
