"""Pure logic of the exec engine: arguments, prompt rendering, event parsing."""

from __future__ import annotations

import json
from pathlib import Path

from app.codex.binary import CodexBinary
from app.engines.exec import ExecEventParser, build_argv, render_prompt, toml_override
from app.turn import Completed, Failed, FailureKind, Message, ReasoningDelta, RunPolicy, TextDelta, Turn, UsageReport

POLICY = RunPolicy(sandbox="read-only", reasoning_effort="high", hide_reasoning=False, cwd=Path("/tmp/work"))


def test_overrides_are_serialised_not_pasted() -> None:
    assert toml_override("model_reasoning_effort", "high") == 'model_reasoning_effort="high"'
    hostile = 'x" \nsandbox_mode = "danger-full-access'
    rendered = toml_override("k", hostile)
    assert "\n" not in rendered and rendered.count('"') == 2 + hostile.count('"')
    assert toml_override("hide_agent_reasoning", True) == "hide_agent_reasoning=true"


def test_argv_keeps_the_prompt_off_the_command_line() -> None:
    turn = Turn("gpt-5.5", (Message("user", "secret prompt"),), POLICY)
    argv = build_argv(CodexBinary(Path("/bin/codex"), {}), turn)
    assert argv[-1] == "-"
    assert "secret prompt" not in " ".join(argv)
    assert "--sandbox" not in argv  # a permission profile instead (the two do not combine)
    assert 'default_permissions="codex-wrapper"' in argv
    assert 'permissions.codex-wrapper={filesystem = {":root" = "read"}}' in argv
    assert argv[argv.index("--model") + 1] == "gpt-5.5"
    assert {"--json", "--skip-git-repo-check", "--ephemeral"} <= set(argv)


def test_hidden_reasoning_asks_codex_for_no_summaries() -> None:
    turn = Turn("m", (Message("user", "q"),), RunPolicy("read-only", "low", True, Path("/tmp")))
    argv = build_argv(CodexBinary(Path("/bin/codex"), {}), turn)
    assert 'model_reasoning_summary="none"' in argv and "hide_agent_reasoning=true" in argv


def test_a_lone_user_message_is_sent_as_it_is() -> None:
    assert render_prompt((Message("user", "just this"),)) == "just this"


def test_conversation_is_labelled_with_instructions_first() -> None:
    prompt = render_prompt(
        (
            Message("user", "one"),
            Message("system", "be brief"),
            Message("assistant", "two"),
            Message("user", "three"),
        )
    )
    assert prompt == "[Instructions]\nbe brief\n\n[User]\none\n\n[Assistant]\ntwo\n\n[User]\nthree\n\n[Assistant]"


def feed(parser: ExecEventParser, *events: dict) -> list:
    out = []
    for event in events:
        out += parser.feed(json.dumps(event).encode())
    return out


def test_parser_maps_messages_reasoning_usage_and_completion() -> None:
    parser = ExecEventParser()
    events = feed(
        parser,
        {"type": "thread.started", "thread_id": "t"},
        {"type": "item.completed", "item": {"type": "error", "message": "metadata missing"}},
        {"type": "item.completed", "item": {"type": "reasoning", "text": "hmm"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "first"}},
        {"type": "item.completed", "item": {"type": "command_execution", "command": "ls"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "second"}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "cached_input_tokens": 1, "output_tokens": 2}},
    )
    assert events[0] == ReasoningDelta("hmm")
    assert events[1:3] == [TextDelta("first"), TextDelta("\n\nsecond")]
    assert isinstance(events[3], UsageReport) and events[3].usage.total_tokens == 7
    assert events[4] == Completed("first\n\nsecond")


def test_error_events_are_not_fatal_but_turn_failed_is() -> None:
    parser = ExecEventParser()
    assert feed(parser, {"type": "error", "message": "Reconnecting... 1/5"}) == []
    [failed] = feed(parser, {"type": "turn.failed", "error": {"message": "unexpected status 500"}})
    assert failed == Failed(FailureKind.UPSTREAM, "unexpected status 500")
    [limited] = feed(parser, {"type": "turn.failed", "error": {"message": "last status: 429 Too Many Requests"}})
    assert limited.kind is FailureKind.RATE_LIMITED


def test_non_json_lines_are_skipped() -> None:
    assert ExecEventParser().feed(b"Reading prompt from stdin...") == []
