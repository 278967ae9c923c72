"""App-server turn translation: a Turn as thread/turn parameters and injected items; notifications as TurnEvents."""

from __future__ import annotations

from typing import Any

from app.engines.app_server.dynamic_tools import ToolNames, history_item, token_usage, tool_thread_params
from app.engines.modes import BASE_CONFIG, CHAT_BASE_INSTRUCTIONS, CHAT_CONFIG
from app.engines.web_search import web_search_event
from app.policy.permissions import PROFILE_ID, turn_profile
from app.policy.project_docs import DISCOVERY_OFF
from app.policy.worker_seal import sealed_config
from app.turn import (
    Completed,
    Failed,
    FailureKind,
    Item,
    Message,
    ReasoningDelta,
    TextDelta,
    Turn,
    TurnEvent,
    Usage,
    UsageReport,
)

_RATE_LIMIT_INFOS = ("rateLimitExceeded",)


def _item(message: Message) -> dict[str, Any]:
    kind = "output_text" if message.role == "assistant" else "input_text"
    parts: list[dict[str, Any]] = [{"type": kind, "text": message.text}] if message.text else []
    parts += [{"type": "input_image", "image_url": url} for url in message.images]
    return {"type": "message", "role": message.role, "content": parts}


def _is_instruction(item: Item) -> bool:
    return isinstance(item, Message) and item.role in ("system", "developer")


def split_conversation(
    messages: tuple[Item, ...], names: ToolNames | None = None
) -> tuple[list[dict[str, Any]], Message | None]:
    """The request's instructions and earlier steps as Responses items, and the turn's input: the last user
    message when the conversation ends with one; None when it ends otherwise (say, with function outputs), and
    the model goes on from the injected history alone.

    Instructions travel as an injected developer message (not thread/start's developerInstructions), so a thread
    started ahead of the request fits any conversation.
    """
    names = names or ToolNames(())
    instructions = "\n\n".join(m.text for m in messages if isinstance(m, Message) and _is_instruction(m) and m.text)
    steps = [m for m in messages if not _is_instruction(m)]
    prompt: Message | None = None
    if steps and isinstance(last := steps[-1], Message) and last.role == "user":
        prompt, steps = last, steps[:-1]
    elif not steps:
        prompt = Message("user", "")
    items = [_item(Message("developer", instructions))] if instructions else []
    for step in steps:
        if not isinstance(step, Message):
            items.append(history_item(step, names))
        elif step.text or step.images:
            items.append(_item(step))
    return items, prompt


def thread_params(turn: Turn, sealed: bool = False) -> dict[str, Any]:
    """`sealed`: the worker runs in a namespace that hides the denied paths (app/policy/worker_seal.py), so an agent
    turn runs Codex's plain sandbox instead of the permission profile."""
    policy = turn.policy
    config: dict[str, Any] = dict(BASE_CONFIG)
    if turn.verbosity is not None:
        config["model_verbosity"] = turn.verbosity
    if policy.hide_reasoning:
        config["hide_agent_reasoning"] = True
        config["model_reasoning_summary"] = "none"
    params: dict[str, Any] = {
        "model": turn.model,
        "cwd": str(policy.cwd),
        "approvalPolicy": "never",
        "ephemeral": True,
    }
    profile = turn_profile(policy)
    if sealed and profile is not None:
        params["sandbox"] = policy.sandbox
        config.update(sealed_config(policy))
    elif profile is None:
        params["sandbox"] = policy.sandbox
    else:  # a permission profile replaces `sandbox` (the two do not combine)
        params["permissions"] = PROFILE_ID
        config[f"permissions.{PROFILE_ID}"] = profile
        config.update(DISCOVERY_OFF)  # the gateway reads AGENTS.md (gateway_reads_project_doc)
    if policy.mode == "chat":
        config.update(CHAT_CONFIG)
        params.update(environments=[], dynamicTools=[], baseInstructions=CHAT_BASE_INSTRUCTIONS)
    if turn.web_search is not None:
        config["web_search"] = turn.web_search
    params.update(tool_thread_params(turn, ToolNames(turn.tools)))
    params["config"] = config
    return params


def gateway_reads_project_doc(turn: Turn) -> bool:
    """Whether the gateway, not Codex, reads the turn's AGENTS.md: under a permission profile each of Codex's
    checks is a sandboxed helper launch (app/policy/project_docs.py); in a sealed worker Codex would read it
    unsandboxed."""
    return turn_profile(turn.policy) is not None


def turn_params(thread_id: str, prompt: Message | None, turn: Turn) -> dict[str, Any]:
    user_input: list[dict[str, Any]] = []
    if prompt is not None:
        user_input = [{"type": "text", "text": prompt.text}] if prompt.text or not prompt.images else []
        user_input += [{"type": "image", "url": url} for url in prompt.images]
    params: dict[str, Any] = {"threadId": thread_id, "input": user_input, "effort": turn.policy.reasoning_effort}
    if turn.output_schema is not None:
        params["outputSchema"] = turn.output_schema
    if turn.policy.hide_reasoning:
        params["summary"] = "none"
    elif turn.policy.reasoning_summary is not None:
        params["summary"] = turn.policy.reasoning_summary
    return params


def failure_kind(error: dict[str, Any] | None) -> FailureKind:
    info = (error or {}).get("codexErrorInfo")
    if info == "usageLimitExceeded":
        return FailureKind.USAGE_LIMIT
    if info in _RATE_LIMIT_INFOS:
        return FailureKind.RATE_LIMITED
    if isinstance(info, dict):
        for detail in info.values():
            if isinstance(detail, dict) and detail.get("httpStatusCode") == 429:
                return FailureKind.RATE_LIMITED
    return FailureKind.UPSTREAM


def usage_of(params: dict[str, Any]) -> Usage:
    return token_usage((params.get("tokenUsage") or {}).get("total"))


class TurnTranslator:
    """App-server notifications of one thread → TurnEvents."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.usage = Usage()
        self.error = ""
        self._item: str | None = None  # the agent message the last delta belonged to
        self._streamed: set[str] = set()

    def _text(self, item_id: str, delta: str) -> TextDelta:
        if item_id != self._item and self.text:
            delta = "\n\n" + delta  # a further agent message, as the exec engine joins them
        self._item = item_id
        self._streamed.add(item_id)
        self.text.append(delta)
        return TextDelta(delta)

    def feed(self, message: dict[str, Any]) -> list[TurnEvent]:
        method, params = message.get("method"), message.get("params") or {}
        if method == "item/agentMessage/delta" and params.get("delta"):
            return [self._text(str(params.get("itemId")), params["delta"])]
        if method == "item/reasoning/summaryTextDelta" and params.get("delta"):
            return [ReasoningDelta(params["delta"])]
        if method == "item/completed":
            item = params.get("item") or {}
            if item.get("type") == "agentMessage" and item.get("text") and item.get("id") not in self._streamed:
                return [self._text(str(item.get("id")), item["text"])]
            if item.get("type") == "webSearch":
                return [web_search_event(item)]
        elif method == "thread/tokenUsage/updated":
            self.usage = usage_of(params)
        elif method == "error" and not params.get("willRetry"):
            self.error = str((params.get("error") or {}).get("message") or "")
        elif method == "turn/completed":
            return self._completed(params.get("turn") or {})
        return []

    def _completed(self, turn: dict[str, Any]) -> list[TurnEvent]:
        status = turn.get("status")
        if status == "completed":
            return [UsageReport(self.usage), Completed("".join(self.text))]
        error = turn.get("error") or {}
        message = error.get("message") or self.error or f"the turn ended as {status}"
        if status == "interrupted":
            return [Failed(FailureKind.CRASHED, f"Codex interrupted the turn: {message}")]
        return [Failed(failure_kind(error), message)]
