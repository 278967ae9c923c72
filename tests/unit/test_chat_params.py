"""Chat request checks: ignored sampling fields, refused features, message conversion."""

from __future__ import annotations

import pytest

from app.api.chat import check_params, to_messages
from app.errors import ApiError
from app.images import MessageDraft


def test_sampling_fields_are_reported_not_refused() -> None:
    assert check_params({"temperature": 1, "max_tokens": 5, "seed": None, "n": 1, "logprobs": False}) == [
        "temperature",
        "max_tokens",
    ]


def test_what_codex_cannot_report_is_named_when_asked_for() -> None:
    asked = {"logprobs": True, "top_logprobs": 2, "store": True, "prediction": {"type": "content", "content": "x"}}
    assert check_params(asked) == ["logprobs", "top_logprobs", "store", "prediction"]
    assert check_params({"logprobs": False, "top_logprobs": 0, "store": False}) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"n": 3},
        {"audio": {"voice": "alloy"}},
        {"modalities": ["audio"]},
        {"web_search_options": {}},
        {"moderation": {"model": "omni-moderation-latest", "policy": {"output": {"mode": "block"}}}},
        {"bogus": 1},
    ],
)
def test_unsupported_features_are_refused_by_name(extra: dict) -> None:
    with pytest.raises(ApiError) as caught:
        check_params(extra)
    assert caught.value.status == 400 and caught.value.param == next(iter(extra))


def test_messages_accept_null_and_text_parts() -> None:
    raw = [
        {"role": "developer", "content": "d"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "name": "ann"},
    ]
    assert to_messages(raw) == [
        MessageDraft("developer", "d"),
        MessageDraft("assistant", ""),
        MessageDraft("user", "a\nb"),
    ]


def test_messages_without_any_text_are_refused() -> None:
    with pytest.raises(ApiError):
        to_messages([{"role": "user", "content": "  "}])
