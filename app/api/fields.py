"""The decision for every request field of both endpoints that their request models do not hold themselves.

docs/FIELDS.md (and .ja) is the same list in words; tests/unit/test_request_fields.py holds the two to the
openai SDK's request types. A field is honoured (read by the adapters: tools, text, response_format, ...), ignored
and named in x-codex-ignored-params when set, checked by a function that names what of it is not honoured, or
refused by name when ignoring it would silently change the answer.
"""

from __future__ import annotations

from typing import Any

from app.api.params import Check, Rule, absent, anything
from app.errors import invalid

# Responses `include` values (the OpenAI enum). Tool-call details belong to tools this gateway does not offer (no
# such items are ever returned), and input image URLs are listed as given: those are honoured as they stand.
INCLUDABLE = (
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
    "reasoning.encrypted_content", "message.output_text.logprobs",
)  # fmt: skip
INCLUDE_NOT_GIVEN = ("reasoning.encrypted_content", "message.output_text.logprobs")

# Accepted and not honoured (Codex has no such control, or it is the operator's, like the service tier a login
# is billed at); named when set to anything but null.
SHARED_IGNORED = (
    "temperature", "top_p", "user", "service_tier", "prompt_cache_key", "prompt_cache_retention",
    "prompt_cache_options", "safety_identifier",
)  # fmt: skip
# client_metadata: what the Codex CLI sends on every request (its thread, turn and window ids): not the model's
RESPONSES_IGNORED = (
    *SHARED_IGNORED, "max_output_tokens", "truncation", "max_tool_calls", "context_management",
    "image", "access_programs", "client_metadata",
)  # fmt: skip
CHAT_IGNORED = (
    *SHARED_IGNORED, "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty", "seed",
    "logit_bias", "metadata", "prediction",
)  # fmt: skip


def _include(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("Invalid type for 'include': expected an array of strings.", param="include")
    for index, entry in enumerate(value):
        if entry not in INCLUDABLE:
            raise invalid(
                f"Invalid value for 'include[{index}]': {entry!r}. Allowed: {', '.join(INCLUDABLE)}.",
                param=f"include[{index}]",
                code="invalid_value",
            )
    return [f"include={entry}" for entry in dict.fromkeys(value) if entry in INCLUDE_NOT_GIVEN]


def _moderation(value: Any) -> list[str]:
    """Scores are not produced (named); a policy that blocks is refused: nothing here could block."""
    policy = value.get("policy") if isinstance(value, dict) else None
    modes = [(policy.get(side) or {}).get("mode") for side in ("input", "output")] if isinstance(policy, dict) else []
    if "block" in modes:
        message = "'moderation' with mode 'block' is not supported by this gateway: Codex runs no moderation model."
        raise invalid(message, param="moderation", code="unsupported_parameter")
    return ["moderation"]


def _stream_options(value: Any) -> list[str]:
    """Responses' stream_options: `include_obfuscation` true is not honoured (no obfuscation field is sent)."""
    if not isinstance(value, dict):
        raise invalid("Invalid type for 'stream_options': expected an object.", param="stream_options")
    return obfuscation(value)


def obfuscation(options: dict[str, Any]) -> list[str]:
    return ["stream_options.include_obfuscation"] if options.get("include_obfuscation") is True else []


def _when_true(name: str) -> Check:
    return lambda value: [name] if value is True else []


def _top_logprobs(value: Any) -> list[str]:
    return ["top_logprobs"] if value else []


RESPONSES_RULES: dict[str, Rule] = {
    "tools": (anything, ""),  # honoured: tools.responses_tools (as are the next two)
    "tool_choice": (anything, ""),
    "parallel_tool_calls": (anything, ""),
    "text": (anything, ""),  # honoured: output.responses_format, and text.verbosity in prepare_turn
    "prompt": (absent, "prompt templates are not available through Codex"),
    "conversation": (absent, "the Conversations API is not available; use previous_response_id"),
}
RESPONSES_CHECKS: dict[str, Check] = {
    "include": _include,
    "moderation": _moderation,
    "stream_options": _stream_options,
    "top_logprobs": _top_logprobs,
}

CHAT_RULES: dict[str, Rule] = {
    "n": (lambda v: v in (None, 1), "Codex produces one choice per request"),
    "tools": (anything, ""),  # honoured: tools.chat_tools (as are the next four)
    "functions": (anything, ""),
    "tool_choice": (anything, ""),
    "function_call": (anything, ""),
    "parallel_tool_calls": (anything, ""),
    "audio": (absent, "audio output is not available through Codex"),
    "web_search_options": (absent, "web search is not available to the model through this API"),
    "modalities": (lambda v: v in (None, ["text"]), "only text output is available"),
    "response_format": (anything, ""),  # honoured: output.chat_format
    "stop": (anything, ""),  # honoured: output.stop_strings
    "verbosity": (anything, ""),  # honoured in prepare_turn (named when the model takes none)
}
CHAT_CHECKS: dict[str, Check] = {
    "logprobs": _when_true("logprobs"),
    "top_logprobs": _top_logprobs,
    "store": _when_true("store"),  # false is what happens: chat completions are never stored
    "moderation": _moderation,
}
