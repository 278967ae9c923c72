"""Pure logic of the app-server engine: thread parameters, history, notification translation, drift check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engines.app_server.protocol import missing_from
from app.engines.app_server.translate import TurnTranslator, split_conversation, thread_params, turn_params
from app.turn import Completed, Failed, FailureKind, Message, ReasoningDelta, RunPolicy, TextDelta, Turn, UsageReport

POLICY = RunPolicy("read-only", "high", False, Path("/w"))


def test_history_is_structured_and_the_last_user_message_is_the_input() -> None:
    messages = (
        Message("system", "be brief"),
        Message("user", "one"),
        Message("assistant", "two"),
        Message("user", "three"),
    )
    items, prompt = split_conversation(messages)
    assert prompt == Message("user", "three")
    assert items == [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
    ]


def test_thread_params_carry_the_policy() -> None:
    turn = Turn("gpt-5.5", (Message("developer", "dev"), Message("user", "q")), POLICY)
    params = thread_params(turn)
    assert params["permissions"] == "codex-wrapper" and "sandbox" not in params  # the two do not combine
    assert params["approvalPolicy"] == "never" and params["ephemeral"]
    assert params["cwd"] == "/w" and params["model"] == "gpt-5.5" and "developerInstructions" not in params
    assert "environments" not in params and params["config"]["features.shell_snapshot"] is False
    assert params["config"]["permissions.codex-wrapper"] == {"filesystem": {":root": "read"}}
    expected = {"threadId": "t", "input": [{"type": "text", "text": "q"}], "effort": "high"}
    assert turn_params("t", Message("user", "q"), turn) == expected


def test_chat_mode_starts_a_bare_thread() -> None:
    policy = RunPolicy("workspace-write", "low", True, Path("/w"), network_access=False, mode="chat")
    params = thread_params(Turn("m", (Message("user", "q"),), policy))
    assert params["environments"] == [] and params["dynamicTools"] == []
    assert params["baseInstructions"] and params["config"]["features.shell_tool"] is False
    assert "permissions" not in params and params["sandbox"] == "workspace-write"  # no tool touches the host
    assert params["config"]["model_reasoning_summary"] == "none"


def test_the_permission_profile_denies_reads_and_opens_the_workspace_only() -> None:
    policy = RunPolicy("workspace-write", "low", False, Path("/w"), network_access=True, denied=("/home/u/.codex",))
    profile = thread_params(Turn("m", (Message("user", "q"),), policy))["config"]["permissions.codex-wrapper"]
    filesystem = profile["filesystem"]
    assert filesystem[":root"] == "read" and filesystem["/home/u/.codex"] == "deny"
    assert filesystem[":workspace_roots"] == {".": "write", ".git": "read", ".codex": "read", ".agents": "read"}
    assert ":slash_tmp" not in filesystem and ":tmpdir" not in filesystem  # /tmp and $TMPDIR stay read-only
    assert profile["network"] == {"enabled": True}


def test_danger_full_access_runs_without_a_profile() -> None:
    policy = RunPolicy("danger-full-access", "low", False, Path("/w"), denied=("/x",))
    params = thread_params(Turn("m", (Message("user", "q"),), policy))
    assert params["sandbox"] == "danger-full-access" and "permissions" not in params


def note(method: str, **params: object) -> dict:
    return {"method": method, "params": {"threadId": "t", **params}}


def test_translator_streams_deltas_and_completes_with_usage() -> None:
    tr = TurnTranslator()
    events = []
    for message in (
        note("item/reasoning/summaryTextDelta", delta="hmm"),
        note("item/agentMessage/delta", itemId="a", delta="Hel"),
        note("item/agentMessage/delta", itemId="a", delta="lo"),
        note("item/completed", item={"type": "agentMessage", "id": "a", "text": "Hello"}),
        note("item/completed", item={"type": "agentMessage", "id": "b", "text": "Bye"}),
        note("thread/tokenUsage/updated", tokenUsage={"total": {"inputTokens": 5, "outputTokens": 2}}),
        note("turn/completed", turn={"status": "completed"}),
    ):
        events += tr.feed(message)
    assert events[:4] == [ReasoningDelta("hmm"), TextDelta("Hel"), TextDelta("lo"), TextDelta("\n\nBye")]
    assert isinstance(events[4], UsageReport) and events[4].usage.total_tokens == 7
    assert events[5] == Completed("Hello\n\nBye")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"message": "boom", "codexErrorInfo": "internalServerError"}, FailureKind.UPSTREAM),
        ({"message": "slow", "codexErrorInfo": "usageLimitExceeded"}, FailureKind.USAGE_LIMIT),
        ({"message": "fast", "codexErrorInfo": "rateLimitExceeded"}, FailureKind.RATE_LIMITED),
        (
            {"message": "x", "codexErrorInfo": {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}},
            FailureKind.RATE_LIMITED,
        ),
    ],
)
def test_failed_turns_map_to_failure_kinds(error: dict, kind: FailureKind) -> None:
    [failed] = TurnTranslator().feed(note("turn/completed", turn={"status": "failed", "error": error}))
    assert failed == Failed(kind, error["message"])


def test_retrying_errors_are_not_the_final_message() -> None:
    tr = TurnTranslator()
    tr.feed(note("error", error={"message": "retrying"}, willRetry=True))
    tr.feed(note("error", error={"message": "gave up"}, willRetry=False))
    [failed] = tr.feed(note("turn/completed", turn={"status": "failed"}))
    assert failed.message == "gave up"


def write_schema(root: Path, client: list[str], notes: list[str], thread_fields: list[str]) -> Path:
    (root / "v2").mkdir(parents=True)
    variants = lambda names: {"oneOf": [{"properties": {"method": {"enum": [n]}}} for n in names]}  # noqa: E731
    (root / "ClientRequest.json").write_text(json.dumps(variants(client)))
    (root / "ServerNotification.json").write_text(json.dumps(variants(notes)))
    (root / "v2" / "ThreadStartParams.json").write_text(json.dumps({"properties": {key: {} for key in thread_fields}}))
    return root


def test_drift_names_what_is_missing(tmp_path: Path) -> None:
    schema = write_schema(tmp_path, ["initialize", "thread/start"], ["turn/completed"], ["model", "cwd"])
    missing = missing_from(schema)
    assert "request turn/start" in missing and "notification item/agentMessage/delta" in missing
    assert "ThreadStartParams.environments" in missing and "TurnStartParams.threadId" in missing
