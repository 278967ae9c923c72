"""app/api/output.py: StopCutter and the stop parameter (the adapters' use of them: test_chat_adapter.py)."""

from __future__ import annotations

import pytest

from app.api.output import StopCutter, stop_strings
from app.errors import ApiError


def feed_all(cutter: StopCutter, pieces: list[str]) -> str:
    out = ""
    for piece in pieces:
        out += cutter.feed(piece)
        if cutter.stopped:
            return out
    return out + cutter.flush()


def test_without_stops_text_passes_at_once() -> None:
    cutter = StopCutter(())
    assert cutter.feed("abc") == "abc" and cutter.flush() == "" and not cutter.stopped


def test_a_stop_split_across_deltas_is_caught() -> None:
    cutter = StopCutter(("END",))
    assert cutter.feed("one E") == "one"  # the last len("END") - 1 characters are held back
    assert cutter.feed("N") == " "
    assert not cutter.stopped
    assert cutter.feed("D two") == "" and cutter.stopped
    assert cutter.flush() == ""


def test_text_held_back_is_given_when_no_stop_comes() -> None:
    cutter = StopCutter(("END",))
    assert feed_all(cutter, ["ab", "EN", "x"]) == "abENx"
    assert not cutter.stopped


def test_the_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopCutter(("zzz", "b", "abc")), ["xxabcb"]) == "xx"
    assert feed_all(StopCutter(("c", "ab")), ["xx", "abc"]) == "xx"


def test_cut_on_a_whole_answer() -> None:
    assert StopCutter(("\n\n",)).cut("para one\n\npara two") == "para one"
    assert StopCutter(("never",)).cut("all of it") == "all of it"


def test_a_stop_at_the_very_start_leaves_nothing() -> None:
    cutter = StopCutter(("Hi",))
    assert cutter.feed("Hi there") == "" and cutter.stopped


@pytest.mark.parametrize(("value", "stops"), [(None, ()), ("x", ("x",)), (["a", "b"], ("a", "b"))])
def test_stop_strings_accepts_a_string_or_a_list(value: object, stops: tuple[str, ...]) -> None:
    assert stop_strings(value) == stops


@pytest.mark.parametrize("value", [5, ["a", 1], ["a", "b", "c", "d", "e"]])
def test_stop_strings_refuses_other_shapes(value: object) -> None:
    with pytest.raises(ApiError) as caught:
        stop_strings(value)
    assert caught.value.status == 400 and caught.value.param == "stop"
