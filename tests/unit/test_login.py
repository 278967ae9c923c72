"""When the gateway asks Codex about its login again, and what it makes of the answers (app/codex/login.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from app.codex.login import Login, LoginWatch, parse_account
from app.errors import ApiError

NONE = Login(True, None)
API_KEY = Login(True, "apiKey")
MESSAGE = "Codex is not logged in: ... Fix: CODEX_HOME=/h npx codex login"


class Answers:
    """Codex's answers, in order (the last one repeats); counts the questions."""

    def __init__(self, *answers: Login) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def __call__(self) -> Login:
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


def test_account_read_answers() -> None:
    assert parse_account({"account": None, "requiresOpenaiAuth": True}).missing
    assert parse_account({"account": {"type": "apiKey"}, "requiresOpenaiAuth": True}) == API_KEY
    assert not parse_account({"account": None, "requiresOpenaiAuth": False}).missing  # a provider with its own key
    assert parse_account(["?"]).error and not parse_account(["?"]).missing  # unknown: requests go ahead


async def test_no_login_is_one_warning_and_a_503_without_asking_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ask = Answers(NONE)
    watch = LoginWatch(ask, (tmp_path / "auth.json",), MESSAGE, retry=3600)
    with caplog.at_level(logging.INFO, "codex_wrapper"):
        await watch.start()
        for _ in range(3):
            with pytest.raises(ApiError) as caught:
                await watch.require()
            assert (caught.value.status, caught.value.code, caught.value.message) == (
                503,
                "codex_not_logged_in",
                MESSAGE,
            )
    assert ask.asked == 1  # nothing changed: the cached answer
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [MESSAGE]


async def test_a_login_file_appearing_is_asked_about_before_the_next_answer(tmp_path: Path) -> None:
    ask, reloads = Answers(NONE, API_KEY), []

    async def on_login() -> None:
        reloads.append(ask.asked)

    watch = LoginWatch(ask, (tmp_path / "auth.json",), MESSAGE, on_login, retry=3600)
    await watch.start()
    (tmp_path / "auth.json").write_text("{}")
    await watch.require()  # served: asked again at once, the engine reloaded before
    assert ask.asked == 2 and reloads == [2]
    await watch.require()
    assert ask.asked == 2 and reloads == [2]


async def test_without_a_file_change_codex_is_asked_again_in_the_background(tmp_path: Path) -> None:
    ask = Answers(NONE, API_KEY)
    watch = LoginWatch(ask, (tmp_path / "auth.json",), MESSAGE, retry=0)
    await watch.start()
    assert (await watch.current()).missing  # answered at once from the last answer
    assert watch._background is not None
    await watch._background
    assert not (await watch.current()).missing and ask.asked == 2
    await watch.close()


async def test_codex_that_cannot_be_asked_lets_requests_go_ahead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watch = LoginWatch(Answers(Login(False, None, "cannot ask Codex: boom")), (tmp_path / "a",), MESSAGE, retry=3600)
    with caplog.at_level(logging.WARNING, "codex_wrapper"):
        await watch.start()
    await watch.require()
    assert any("cannot ask Codex: boom" in r.getMessage() for r in caplog.records)


async def test_concurrent_requests_ask_once(tmp_path: Path) -> None:
    ask = Answers(NONE, API_KEY)
    watch = LoginWatch(ask, (tmp_path / "auth.json",), MESSAGE, retry=3600)
    await watch.start()
    (tmp_path / "auth.json").write_text("{}")
    await asyncio.gather(*(watch.require() for _ in range(5)))
    assert ask.asked == 2
