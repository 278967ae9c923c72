"""The `exec` engine: one `codex exec --json` process per turn, prompt on stdin, own process group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import tempfile
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from app.codex.binary import CodexBinary, end_group, kill_group
from app.codex.command_limits import Cgroups, Group
from app.engines.base import Engine
from app.engines.modes import BASE_CONFIG, CHAT_BASE_INSTRUCTIONS, CHAT_CONFIG
from app.engines.web_search import web_search_event
from app.images import decode_data_url
from app.policy.permissions import PROFILE_ID, turn_profile
from app.turn import (
    Completed,
    Failed,
    FailureKind,
    Item,
    Message,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    Turn,
    TurnEvent,
    Usage,
    UsageReport,
)

log = logging.getLogger("codex_wrapper")
_LINE_LIMIT = 64 * 1024 * 1024  # one JSONL event may carry a whole command output
_EXIT_GRACE = 1.0
_KILL_GRACE = 2.0
_RATE_LIMITED = re.compile(r"\b429\b|too many requests|rate limit", re.IGNORECASE)
_USAGE_LIMIT = re.compile(r"hit your usage limit|usage limit (?:has been )?reached", re.IGNORECASE)
_LABELS = {"user": "User", "assistant": "Assistant"}


def toml_value(value: object) -> str:
    """A TOML value on one line (tables inline), serialised by tomli-w or json, never pasted."""
    if isinstance(value, dict):
        keys = [tomli_w.dumps({str(k): 0}).rsplit(" = ", 1)[0] for k in value]  # quoted as TOML needs
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in zip(keys, value.values(), strict=True)) + "}"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def toml_override(key: str, value: object) -> str:
    """A `-c key=value` argument."""
    return f"{key}={toml_value(value)}"


def _as_message(item: Item) -> Message:
    """Earlier function calls and their outputs as transcript text (the exec engine offers no functions)."""
    if isinstance(item, ToolCall):
        return Message("assistant", f"[called function {item.name}({item.arguments}), call id {item.call_id}]")
    if isinstance(item, Message):
        return item
    return Message("user", f"[output of function call {item.call_id}]\n{item.output}")


def render_prompt(items: tuple[Item, ...]) -> str:
    """System/developer text first, then the conversation; a lone user message stays as it is.

    Images are attached to the prompt as files (exec takes them only that way), numbered in order of appearance.
    """
    messages = [_as_message(item) for item in items]
    instructions = [m.text for m in messages if m.role in ("system", "developer") and m.text]
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not instructions and len(turns) == 1 and turns[0].role == "user" and not turns[0].images:
        return turns[0].text
    parts, seen = [], 0
    if instructions:
        parts.append("[Instructions]\n" + "\n\n".join(instructions))
    for m in turns:
        marks = "".join(f"\n[attached image {seen + n + 1}]" for n in range(len(m.images)))
        seen += len(m.images)
        parts.append(f"[{_LABELS[m.role]}]\n{m.text}{marks}")
    if turns and turns[-1].role == "user":
        parts.append("[Assistant]")
    return "\n\n".join(parts)


def build_argv(
    binary: CodexBinary, turn: Turn, chat_instructions: Path | None = None, files: TurnFiles | None = None
) -> list[str]:
    policy = turn.policy
    files = files or TurnFiles()
    argv = [str(binary.path), "exec"]
    for image in files.images:  # before the other options: --image takes several values
        argv += ["--image", str(image)]
    argv += [
        "--json",
        "--skip-git-repo-check",
        "--ephemeral",
        "--color",
        "never",
        "--cd",
        str(policy.cwd),
        "--model",
        turn.model,
        "-c",
        toml_override("model_reasoning_effort", policy.reasoning_effort),
    ]
    for key, value in BASE_CONFIG.items():
        argv += ["-c", toml_override(key, value)]
    profile = turn_profile(policy)
    if profile is None:
        argv += ["--sandbox", policy.sandbox]
    else:  # a permission profile replaces --sandbox (the two do not combine)
        argv += ["-c", toml_override(f"permissions.{PROFILE_ID}", profile)]
        argv += ["-c", toml_override("default_permissions", PROFILE_ID)]
    if policy.mode == "chat":  # the closest exec allows to the app-server's chat threads
        for key, value in CHAT_CONFIG.items():
            argv += ["-c", toml_override(key, value)]
        if chat_instructions is not None:
            argv += ["-c", toml_override("model_instructions_file", str(chat_instructions))]
    if turn.verbosity is not None:
        argv += ["-c", toml_override("model_verbosity", turn.verbosity)]
    if turn.web_search is not None:
        argv += ["-c", toml_override("web_search", turn.web_search)]
    if policy.hide_reasoning:
        argv += ["-c", toml_override("hide_agent_reasoning", True)]
        argv += ["-c", toml_override("model_reasoning_summary", "none")]
    elif policy.reasoning_summary is not None:
        argv += ["-c", toml_override("model_reasoning_summary", policy.reasoning_summary)]
    if files.schema is not None:
        argv += ["--output-schema", str(files.schema)]
    argv.append("-")  # the prompt comes on stdin
    return argv


def usage_from(event: dict[str, Any]) -> Usage:
    raw = event.get("usage") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        cached_input_tokens=int(raw.get("cached_input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        reasoning_output_tokens=int(raw.get("reasoning_output_tokens") or 0),
    )


def failure_from(message: str) -> Failed:
    """`codex exec --json` reports no rate limits: a reached plan limit is known from its message only."""
    if _USAGE_LIMIT.search(message):
        return Failed(FailureKind.USAGE_LIMIT, message)
    kind = FailureKind.RATE_LIMITED if _RATE_LIMITED.search(message) else FailureKind.UPSTREAM
    return Failed(kind, message)


class ExecEventParser:
    """Turns `codex exec --json` lines into TurnEvents; remembers the answer so far."""

    def __init__(self) -> None:
        self.answer: list[str] = []
        self.last_error = ""

    def feed(self, line: bytes) -> list[TurnEvent]:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            log.debug("codex exec printed a non-JSON line: %r", line[:200])
            return []
        kind = event.get("type")
        if kind == "item.completed":
            return self._item(event.get("item") or {})
        if kind == "turn.completed":
            return [UsageReport(usage_from(event)), Completed("".join(self.answer))]
        if kind == "turn.failed":
            message = (event.get("error") or {}).get("message") or self.last_error or "the model provider failed"
            return [failure_from(message)]
        if kind == "error":  # not fatal: Codex reports retries this way
            self.last_error = str(event.get("message") or "")
            log.info("codex reported: %s", self.last_error)
        return []

    def _item(self, item: dict[str, Any]) -> list[TurnEvent]:
        item_type = item.get("type")
        text = str(item.get("text") or "")
        if item_type == "agent_message" and text:
            piece = ("\n\n" if self.answer else "") + text
            self.answer.append(piece)
            return [TextDelta(piece)]
        if item_type == "reasoning" and text:
            return [ReasoningDelta(text)]
        if item_type == "web_search":
            return [web_search_event(item)]
        if item_type == "error":
            log.info("codex notice: %s", item.get("message"))
        return []


class ExecEngine(Engine):
    name = "exec"
    client_tools = False  # `codex exec` cannot hand a function call back to its caller

    def __init__(
        self, binary: CodexBinary, env: dict[str, str], temp_dir: Path | None = None, cgroups: Cgroups | None = None
    ) -> None:
        self.binary = binary
        self.cgroups = cgroups  # each turn's Codex in a cgroup of its own, its commands' limits
        self.env = env
        self.temp_dir = temp_dir  # the gateway's private folder (0700, no sandbox can read or write it)
        self.chat_instructions: Path | None = None
        self._groups: set[int] = set()  # process groups of running turns, for shutdown

    async def start(self) -> None:
        handle, path = tempfile.mkstemp(prefix="codex-wrapper-chat-", suffix=".md", dir=self.temp_dir)
        with os.fdopen(handle, "w") as out:
            out.write(CHAT_BASE_INSTRUCTIONS)
        self.chat_instructions = Path(path)

    async def stop(self) -> None:
        await asyncio.gather(*(end_group(group) for group in list(self._groups)))  # cleanups that did not run
        if self.chat_instructions is not None:
            self.chat_instructions.unlink(missing_ok=True)

    async def prewarm(self, turn: Turn) -> None:
        return None  # nothing outlives a turn here

    async def reload(self) -> None:
        return None  # every turn is a new `codex exec`, which reads the login afresh

    def ready(self) -> bool:
        return True

    def status(self) -> str:
        return "one codex exec per turn"

    async def run(self, turn: Turn) -> AsyncGenerator[TurnEvent, None]:
        with turn_files(turn, self.temp_dir) as files:
            inner = self._run(turn, files)
            try:
                async for event in inner:
                    yield event
            finally:
                await inner.aclose()  # the process is reaped before its files go

    async def _run(self, turn: Turn, files: TurnFiles) -> AsyncGenerator[TurnEvent, None]:
        group: Group | None = None
        try:
            group = self.cgroups.group("turn") if self.cgroups else None
            proc = await asyncio.create_subprocess_exec(
                *build_argv(self.binary, turn, self.chat_instructions, files),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=str(turn.policy.cwd),
                start_new_session=True,
                limit=_LINE_LIMIT,
                preexec_fn=group.preexec() if group else None,
            )
        except OSError as exc:
            if group is not None:
                group.remove()
            yield Failed(FailureKind.UNAVAILABLE, f"cannot start Codex ({self.binary.path}): {exc.strerror or exc}")
            return
        finally:
            if group is not None:
                group.started()
        self._groups.add(proc.pid)
        feeder = asyncio.create_task(_feed(proc, render_prompt(turn.messages).encode()))
        stderr_tail = asyncio.create_task(_tail(proc.stderr))
        parser = ExecEventParser()
        answered = False
        try:
            assert proc.stdout is not None
            async for line in proc.stdout:
                for event in parser.feed(line):
                    answered = isinstance(event, (Completed, Failed))
                    yield event
                    if answered:
                        return
            await proc.wait()
            detail = parser.last_error or (await stderr_tail).strip() or f"exit status {proc.returncode}"
            yield Failed(FailureKind.CRASHED, f"Codex exited without an answer: {detail[-500:]}")
        finally:
            feeder.cancel()
            await _reap(proc, graceful=answered)
            self._groups.discard(proc.pid)
            if group is not None:
                group.remove()
            stderr_tail.cancel()


@dataclass(frozen=True)
class TurnFiles:
    schema: Path | None = None
    images: tuple[Path, ...] = ()


@contextlib.contextmanager
def turn_files(turn: Turn, temp_dir: Path | None = None) -> Iterator[TurnFiles]:
    """The files a turn needs on disk (output schema, images) in `temp_dir`, removed when the turn ends."""
    images = [url for m in turn.messages if isinstance(m, Message) for url in m.images]
    if turn.output_schema is None and not images:
        yield TurnFiles()
        return
    with tempfile.TemporaryDirectory(prefix="codex-wrapper-turn-", dir=temp_dir) as name:
        folder = Path(name)
        schema = None
        if turn.output_schema is not None:
            schema = folder / "schema.json"
            schema.write_text(json.dumps(turn.output_schema))
        paths = []
        for n, url in enumerate(images):
            content_type, data = decode_data_url(url) or ("image/png", b"")
            path = folder / f"image-{n + 1}.{content_type.split('/')[-1]}"
            path.write_bytes(data)
            paths.append(path)
        yield TurnFiles(schema, tuple(paths))


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()


async def _tail(stream: asyncio.StreamReader | None, keep: int = 4000) -> str:
    if stream is None:
        return ""
    tail = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-keep:]
    return tail.decode(errors="replace")


async def _reap(proc: asyncio.subprocess.Process, graceful: bool) -> None:
    """End the turn's process group: after an answer Codex exits by itself; otherwise SIGTERM, then SIGKILL."""
    try:
        if graceful:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), _EXIT_GRACE)
        kill_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), _KILL_GRACE)
    finally:
        await asyncio.shield(end_group(proc.pid))  # whatever is left of the group, also when cancelled again
