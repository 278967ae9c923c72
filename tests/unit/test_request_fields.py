"""docs/FIELDS.md (and .ja) against the openai SDK's request types and the code's rules: every field of both
request schemas has a decision in the code and a row in the docs, and the row says what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

from app.api import fields
from app.api.chat import ChatRequest
from app.api.params import anything
from app.api.responses import ResponsesRequest
from tests.harness import REPO

# the decision words of the two languages' tables
WORDS = {
    "honoured": "honoured", "nearest": "nearest", "ignored": "ignored", "refused": "refused",
    "従う": "honoured", "近い値": "nearest", "無視": "ignored", "拒否": "refused",
}  # fmt: skip
SECTIONS = {
    "responses": ("## Responses request", "## Responses のリクエスト"),
    "chat": ("## Chat Completions request", "## Chat Completions のリクエスト"),
}
ENDPOINTS = {
    "responses": (
        response_create_params.ResponseCreateParamsBase,
        ResponsesRequest,
        fields.RESPONSES_IGNORED,
        fields.RESPONSES_RULES,
        fields.RESPONSES_CHECKS,
    ),
    "chat": (
        completion_create_params.CompletionCreateParamsBase,
        ChatRequest,
        fields.CHAT_IGNORED,
        fields.CHAT_RULES,
        fields.CHAT_CHECKS,
    ),
}


def sdk_fields(endpoint: str) -> set[str]:
    return set(ENDPOINTS[endpoint][0].__annotations__) | {"stream"}


def code_decisions(endpoint: str) -> dict[str, set[str]]:
    """What the code does with each top-level field, as the docs' decision words."""
    _, model, ignored, rules, checks = ENDPOINTS[endpoint]
    decided: dict[str, set[str]] = {name: {"honoured", "nearest"} for name in model.model_fields}
    decided |= {name: {"ignored"} for name in (*ignored, *checks)}
    decided |= {name: {"honoured"} if rule[0] is anything else {"refused"} for name, rule in rules.items()}
    return decided


def doc_table(path: Path, heading: str) -> dict[str, set[str]]:
    """Top-level field → the decision words of every row that names it (or one of its nested fields)."""
    text = path.read_text()
    section = text[text.index(heading) :]
    section = section[: section.find("\n## ", 1)]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        words = {WORDS[w] for w in re.split(r"[,、]\s*", cells[1]) if w in WORDS}
        assert words, f"{path.name}: no decision in {line!r}"
        for name in re.findall(r"`([a-z_.]+)`", cells[0]):
            table.setdefault(name.split(".")[0], set()).update(words)
    return table


@pytest.mark.parametrize("endpoint", ["responses", "chat"])
def test_every_sdk_field_has_a_decision_in_the_code(endpoint: str) -> None:
    assert sdk_fields(endpoint) <= set(code_decisions(endpoint))


@pytest.mark.parametrize("endpoint", ["responses", "chat"])
@pytest.mark.parametrize("language", [0, 1], ids=["en", "ja"])
def test_the_docs_table_names_every_field_as_the_code_decides(endpoint: str, language: int) -> None:
    path = REPO / "docs" / ("FIELDS.md", "FIELDS.ja.md")[language]
    table = doc_table(path, SECTIONS[endpoint][language])
    decided = code_decisions(endpoint)
    assert sdk_fields(endpoint) <= set(table), f"{path.name} lacks {sorted(sdk_fields(endpoint) - set(table))}"
    assert set(table) <= set(decided), f"{path.name} has rows the code does not know: {set(table) - set(decided)}"
    for name, words in table.items():
        assert words & decided[name], f"{path.name}: {name} is {sorted(words)}, the code: {sorted(decided[name])}"
