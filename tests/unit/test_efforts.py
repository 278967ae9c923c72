"""Requested efforts and verbosities as the model can take them."""

from __future__ import annotations

import pytest

from app.codex.catalog import ModelInfo
from app.errors import ApiError
from app.policy.efforts import checked_verbosity, supported_effort

LOW_TO_XHIGH = ModelInfo("gpt-5.5", ("low", "medium", "high", "xhigh"))
GAPPED = ModelInfo("gapped", ("minimal", "high"))


@pytest.mark.parametrize(
    ("model", "asked", "used"),
    [
        (LOW_TO_XHIGH, "none", "low"),  # below them all: the lowest
        (LOW_TO_XHIGH, "minimal", "low"),
        (LOW_TO_XHIGH, "medium", "medium"),  # supported: itself
        (LOW_TO_XHIGH, "max", "xhigh"),  # above them all: the highest
        (LOW_TO_XHIGH, "ultra", "xhigh"),
        (GAPPED, "low", "high"),  # in a gap: the next higher, never less effort than asked
        (GAPPED, "none", "minimal"),
        (ModelInfo("own", ("low", "turbo")), "turbo", "turbo"),  # a word only the catalog knows
    ],
)
def test_an_effort_runs_as_the_nearest_supported(model: ModelInfo, asked: str, used: str) -> None:
    assert supported_effort(asked, model, "reasoning.effort") == used


def test_a_model_without_efforts_takes_none() -> None:
    assert supported_effort("high", ModelInfo("plain", ()), "reasoning_effort") is None


@pytest.mark.parametrize("word", ["galactic", "HIGH", ""])
def test_a_word_that_is_no_effort_is_refused_by_name(word: str) -> None:
    with pytest.raises(ApiError) as caught:
        supported_effort(word, LOW_TO_XHIGH, "reasoning.effort")
    assert caught.value.status == 400 and caught.value.param == "reasoning.effort"
    assert "none, minimal, low" in caught.value.message


def test_verbosity_values() -> None:
    assert checked_verbosity("low", "text.verbosity") == "low"
    with pytest.raises(ApiError) as caught:
        checked_verbosity("chatty", "text.verbosity")
    assert caught.value.param == "text.verbosity"
