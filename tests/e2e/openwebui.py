"""`make e2e-openwebui`: OpenWebUI, with its default settings, through the gateway in a real browser.

Starts the fake provider, the gateway (real Codex, CODEX_MODE=chat) and OpenWebUI offline, all on 127.0.0.1 and free
ports, then drives Debian's headless Chromium through sign-up, the model picker and four chats. Screenshots, logs and
the requests that reached the fake model land in .e2e/out/. Exits non-zero when a check fails.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field

import httpx
from playwright.sync_api import Page

from tests.e2e import browser
from tests.e2e.scripts import CLOCK_TOOL, STREAM_WORDS, THOUGHT, OpenWebUIProvider, carries, tool_names
from tests.e2e.stack import StartError, run_openwebui
from tests.fakes.provider import tool_outputs
from tests.harness import FAKE_MODEL, REPO, run_gateway, write_codex_home

OUT = REPO / ".e2e" / "out"
API_KEY = "e2e-openwebui-key"
ANSWER_TIMEOUT = 120.0
PINS = (REPO / "tests" / "e2e" / "requirements-openwebui.txt").read_text()
OPENWEBUI_VERSION = PINS.split("open-webui==", 1)[1].split()[0]


@dataclass
class Checks:
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'}  {name}{'  — ' + detail if detail else ''}", flush=True)
        return ok

    @property
    def failed(self) -> int:
        return sum(not ok for _, ok, _ in self.results)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"))


def open_chat(page: Page, url: str) -> None:
    browser.new_chat(page, url)
    browser.pick_model(page, FAKE_MODEL)


def offered_tools(provider: OpenWebUIProvider, marker: str) -> list[str]:
    requests = provider.chat_requests(marker)
    return tool_names(requests[0]) if requests else []


def streaming_and_history(page: Page, url: str, provider: OpenWebUIProvider, checks: Checks) -> None:
    open_chat(page, url)
    question = "SCRIPT:stream Please stream forty words."
    browser.send(page, question)
    growth = browser.watch_answer(page, ANSWER_TIMEOUT, OUT / "03-streaming.png")
    shot(page, "04-streamed")
    whole = "".join(STREAM_WORDS).strip()
    checks.check("streamed answer complete in the page", whole in growth.final, growth.final[-80:])
    partial = growth.partial_lengths
    checks.check("streamed answer grew in the page", len(partial) >= 5, f"lengths seen while streaming: {partial}")
    tools = offered_tools(provider, "stream")
    checks.check(
        "native function calling: OpenWebUI's built-in tools reached the model",
        CLOCK_TOOL in tools,
        f"{len(tools)} tools: {', '.join(tools)}",
    )

    browser.send(page, "SCRIPT:recall What did I ask you?")
    second = browser.wait_answer(page, ANSWER_TIMEOUT)
    shot(page, "05-second-turn")
    checks.check("second turn answered", "You asked me to stream words." in second, second[-80:])
    recalls = provider.chat_requests("recall")
    checks.check(
        "second turn carried the history to the model",
        bool(recalls) and carries(recalls[-1], "Please stream forty words.", whole),
        f"{len(recalls)} request(s)",
    )


def thinking(page: Page, url: str, checks: Checks) -> None:
    open_chat(page, url)
    browser.send(page, "SCRIPT:think Which colour is calmer, blue or red?")
    text = browser.wait_answer(page, ANSWER_TIMEOUT)
    checks.check("reasoning reply answered", "Blue is calmer." in text, text[-80:])
    last = page.locator(browser.ANSWER).last
    block = last.get_by_text("Thought for", exact=False)
    checks.check("thinking block shown", block.count() > 0, text.splitlines()[0] if text else "")
    if block.count():
        block.first.click()
        page.wait_for_timeout(500)
    thought = "".join(THOUGHT)
    shown = browser.answer_text(page)
    checks.check("thinking block holds the reasoning", thought in shown, thought)
    shot(page, "06-thinking")


def timestamp_of(outputs: list[str]) -> int | None:
    """The `current_timestamp` in the output of OpenWebUI's clock tool, as it reached the model."""
    for output in outputs:
        with suppress(ValueError, TypeError, AttributeError):
            return int(json.loads(output)["current_timestamp"])
    return None


def built_in_tool(page: Page, url: str, provider: OpenWebUIProvider, checks: Checks) -> None:
    open_chat(page, url)
    browser.send(page, "SCRIPT:clock What time is it?")
    text = browser.wait_answer(page, ANSWER_TIMEOUT)
    shot(page, "07-tool-answer")
    checks.check("final answer after the tool call", "The clock tool answered." in text, text[-120:])
    requests = provider.chat_requests("clock")
    checks.check("the model was offered the tool", bool(requests) and CLOCK_TOOL in tool_names(requests[0]))
    outputs = [output for body in requests for output in tool_outputs(body)]
    stamp = timestamp_of(outputs)
    checks.check("tool result went back to the model", stamp is not None, (outputs or ["no tool output"])[0][:160])
    call = page.locator(browser.ANSWER).last.get_by_text(f"View Result from {CLOCK_TOOL}", exact=False)
    checks.check("tool call shown in the page", call.count() > 0, text.splitlines()[0] if text else "")
    if call.count():
        call.first.click()
        page.wait_for_timeout(500)
    shown = browser.answer_text(page)
    checks.check("tool result shown in the page", stamp is not None and str(stamp) in shown, f"timestamp {stamp}")
    shot(page, "08-tool-result")


def gateway_statuses(log: str) -> list[int]:
    """The status of every request the gateway logged."""
    statuses = []
    for line in log.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "request":
                statuses.append(int(event["status"]))
    return statuses


def flow(url: str, provider: OpenWebUIProvider, checks: Checks) -> None:
    with browser.open_page(OUT) as page:
        try:
            browser.sign_up(page, url, "E2E Admin", "admin@example.com", "e2e-password-123")
            shot(page, "01-signed-up")
            browser.new_chat(page, url)
            page.click("#model-selector-model-button")
            page.fill("#model-search-input", FAKE_MODEL)
            shot(page, "02-model-picker")
            page.keyboard.press("Escape")
            streaming_and_history(page, url, provider, checks)
            thinking(page, url, checks)
            built_in_tool(page, url, provider, checks)
        except Exception as error:
            shot(page, "99-failure")
            checks.check("browser flow ran to its end", False, f"{type(error).__name__}: {error}")


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    checks = Checks()
    provider = OpenWebUIProvider().start()
    try:
        home = write_codex_home(OUT / "codex-home", provider.base_url)
        workdir = OUT / "workdir"
        workdir.mkdir()
        settings = {"CODEX_MODE": "chat", "PROXY_API_KEY": API_KEY}
        with run_gateway(home, workdir, OUT / "gateway.log", **settings) as gateway:
            print(f"gateway on {gateway.base_url}; starting OpenWebUI …", flush=True)
            try:
                with run_openwebui(gateway.base_url, API_KEY, OUT) as webui:
                    print(f"OpenWebUI on {webui.url} after {time.monotonic() - started:.0f} s", flush=True)
                    version = httpx.get(f"{webui.url}/api/version", timeout=10).json().get("version")
                    checks.check("OpenWebUI is the pinned version", version == OPENWEBUI_VERSION, str(version))
                    flow(webui.url, provider, checks)
            except StartError as error:
                checks.check("OpenWebUI started", False, f"{error}")
            statuses = gateway_statuses(gateway.log())
            refused = [status for status in statuses if status >= 400]
            detail = f"{len(statuses)} requests, refused: {refused}"
            checks.check("the gateway answered every request", not refused, detail)
    finally:
        provider.stop()
        (OUT / "provider-requests.json").write_text(json.dumps(provider.requests, indent=1))
    elapsed = time.monotonic() - started
    passed = len(checks.results) - checks.failed
    print(f"\nscreenshots and logs: {OUT.relative_to(REPO)}/  ({elapsed:.0f} s)")
    print(f"e2e-openwebui: {passed} passed, {checks.failed} failed")
    return 1 if checks.failed or not checks.results else 0


if __name__ == "__main__":
    sys.exit(main())
