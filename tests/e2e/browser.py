"""Driving OpenWebUI's own pages in Debian's headless Chromium, as a person would: click, type, read, screenshot."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"  # Debian's; browser downloads are blocked here
# Without the background-networking flags Chromium keeps reaching for Google's hosts on a closed network
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER = "#response-content-container"  # one per assistant message


@contextmanager
def open_page(shots: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            context.set_default_timeout(30_000)
            yield context.new_page()
        finally:
            browser.close()


def sign_up(page: Page, url: str, name: str, email: str, password: str) -> None:
    """The first account of a new OpenWebUI becomes its admin."""
    page.goto(f"{url}/auth")
    page.get_by_role("button", name="Get started").click()
    page.fill("#name", name)
    page.fill("#email", email)
    page.fill("#password", password)
    page.get_by_role("button", name="Create Admin Account").click()
    page.wait_for_selector("#chat-input")
    with suppress(PlaywrightError):  # the release-notes dialog is not always shown
        page.get_by_role("button", name="Okay, Let's Go!").click(timeout=5_000)


def new_chat(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    page.wait_for_selector("#chat-input")


def pick_model(page: Page, model: str) -> None:
    page.click("#model-selector-model-button")
    page.fill("#model-search-input", model)
    page.get_by_role("option", name=f"Select {model} model", exact=True).click()
    page.wait_for_selector(f'[aria-label="Selected model: {model}"]')


def send(page: Page, text: str) -> None:
    before = page.locator(ANSWER).count()
    page.click("#chat-input")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelectorAll('{ANSWER}').length > {before}")


def answer_text(page: Page) -> str:
    """The visible text of the last assistant message."""
    answers = page.locator(ANSWER)
    return answers.nth(answers.count() - 1).inner_text() if answers.count() else ""


def answer_done(page: Page) -> bool:
    """Whether the last assistant message has finished: OpenWebUI shows its action bar (Regenerate) only then."""
    last = page.locator('#messages-container [role="listitem"]').last
    return last.locator('[aria-label="Regenerate"]').count() > 0


@dataclass
class Growth:
    """How the last answer's text grew, sampled while it streamed."""

    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since send, characters)
    final: str = ""

    @property
    def partial_lengths(self) -> list[int]:
        """Distinct lengths seen before the answer was complete, in order."""
        seen: list[int] = []
        for _, length in self.samples:
            if 0 < length < len(self.final) and (not seen or length != seen[-1]):
                seen.append(length)
        return seen


def watch_answer(page: Page, timeout: float, shot: Path | None = None) -> Growth:
    """Sample the last answer until OpenWebUI marks it finished (an error box counts) or `timeout` seconds pass;
    with `shot`, one screenshot while it is partly there."""
    growth = Growth()
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        text = answer_text(page)
        growth.samples.append((round(time.monotonic() - start, 2), len(text)))
        if answer_done(page):
            break
        if shot and len(text) > 60:
            page.screenshot(path=str(shot))
            shot = None
        time.sleep(0.05)
    growth.final = answer_text(page)
    return growth


def wait_answer(page: Page, timeout: float) -> str:
    return watch_answer(page, timeout).final
