"""A Responses request's `input`: every item shape the SDKs send, as message drafts, function calls and outputs,
and as the input items the API lists for the response.

- `message` items (with or without `type`, `id`, `status`, `phase`): `input_text`, `output_text` (annotations and
  logprobs are an earlier answer's, not text), `refusal`, `input_image`, and `input_file` (files.py).
- `function_call` and `function_call_output` items, and `custom_tool_call` / `custom_tool_call_output` (a
  freeform tool's call and result, app/api/tool_shapes.py) (tool_history.py).
- `additional_tools` and `tool_search_output` items: their tools are offered (tool_shapes.py). A tool search the
  client ran (`execution: "client"`: `tool_search_call` and its `tool_search_output`) is replayed as a call and
  its output naming the tools it loaded; a server's is listed only.
- `web_search_call` and `compaction` items, which Codex replays in its history: listed, not replayed (a web
  search's findings are in the answer that followed it; a compaction's encrypted summary is the provider's,
  named as ignored).
- `reasoning` items, which clients send back whole with an earlier output: accepted and listed, not replayed.
  Their summaries are the model's notes to the client, and the provider would not accept another session's
  encrypted content; each turn reasons afresh.
- `item_reference` items: the referenced item of one of the caller's stored responses (an output item, or an
  input item of its request), resolved by `expand_references` before the rest.
"""

from __future__ import annotations

from typing import Any

from app.api.files import file_part
from app.api.response_events import new_id
from app.api.tool_history import listed, responses_item
from app.errors import ApiError, invalid
from app.images import ImageRef, MessageDraft
from app.store import ResponseStore
from app.turn import ToolCall, ToolOutput

ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text", "text")
CALL_TYPES = ("function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output")
SEARCHES = ("tool_search_call", "tool_search_output")
LISTED_ONLY = ("additional_tools", "tool_search_output", "tool_search_call", "web_search_call")
COMPACTIONS = ("compaction", "compaction_summary")
ITEM_TYPES = ("message", *CALL_TYPES, "reasoning", *LISTED_ONLY, *COMPACTIONS, "item_reference")

Draft = MessageDraft | ToolCall | ToolOutput


def item_type(item: dict[str, Any]) -> str:
    """An item's type; without one, a message (it has a role) or a reference (only an id), as the API reads it."""
    kind = item.get("type")
    if kind is None:
        return "item_reference" if "role" not in item and isinstance(item.get("id"), str) else "message"
    return str(kind)


async def expand_references(items: list[Any], store: ResponseStore, owner: str) -> list[Any]:
    """The input with every `item_reference` replaced by the item it names (404 naming an unknown id)."""
    expanded = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item_type(item) != "item_reference":
            expanded.append(item)
            continue
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            where = f"input[{index}].id"
            raise invalid(f"Missing required parameter: '{where}'.", param=where, code="missing_required_parameter")
        found = await store.find_item(owner, item_id)
        if found is None or item_type(found) == "item_reference":
            raise ApiError(
                404,
                f"Item with id '{item_id}' not found. Items of responses created with store: false are not kept, "
                "and an API key reaches only the items of its own responses.",
                param=f"input[{index}].id",
                code="item_not_found",
            )
        expanded.append(found)
    return expanded


def _image(part: dict[str, Any], at: str, role: str) -> ImageRef:
    url = part.get("image_url")
    if isinstance(url, dict):  # the chat form, which some clients send here too
        url = url.get("url")
    if not isinstance(url, str) or not url:
        why = "file ids need the Files API, which this gateway does not have" if part.get("file_id") else None
        message = f"Cannot use the image at '{at}': {why}." if why else f"'{at}.image_url' must be a URL."
        raise invalid(message, param=at if why else f"{at}.image_url", code="unsupported_content")
    if role != "user":
        raise invalid(f"Images are taken in user messages only ('{at}').", param=at, code="unsupported_content")
    return ImageRef(url, f"{at}.image_url")


def parts(content: Any, where: str, role: str) -> tuple[str, tuple[ImageRef, ...]]:
    """A message's content as its text (parts joined by newlines) and its images."""
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise invalid(f"Invalid type for '{where}': expected a string or an array of content parts.", param=where)
    texts, images = [], []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif kind == "input_image":
            images.append(_image(part, at, role))
        elif kind == "input_file":
            given = file_part(part, at, images_allowed=role == "user")
            if given.image is not None:
                images.append(given.image)
            else:
                texts.append(given.text or "")
        elif kind == "input_audio":
            raise invalid(f"Audio input is not available through Codex ('{at}').", param=at, code="unsupported_content")
        else:
            raise invalid(f"Invalid content part at '{at}'.", param=at, code="invalid_value")
    return "\n".join(texts), tuple(images)


def _listed_message(item: dict[str, Any], role: str, text: str, images: tuple[ImageRef, ...]) -> dict[str, Any]:
    if role == "assistant":
        content: list[dict[str, Any]] = [{"type": "output_text", "text": text, "annotations": []}]
    else:
        content = [{"type": "input_text", "text": text}] if text or not images else []
        content += [{"type": "input_image", "image_url": ref.url, "detail": "auto"} for ref in images]
    return {
        "id": item.get("id") or new_id("msg"),
        "type": "message",
        "role": role,
        "status": item.get("status") or "completed",
        "content": content,
    }


def _listed_reasoning(item: dict[str, Any]) -> dict[str, Any]:
    summary = item.get("summary") if isinstance(item.get("summary"), list) else []
    return {
        "id": item.get("id") or new_id("rs"),
        "type": "reasoning",
        "summary": summary,
        "encrypted_content": item.get("encrypted_content"),
    }


def client_search(item: dict[str, Any]) -> bool:
    """A tool search the client ran (its call and output pair up like a function's); a server's is only listed."""
    return item.get("execution") == "client" and isinstance(item.get("call_id"), str) and bool(item["call_id"])


def _listed_as_given(item: dict[str, Any], kind: str) -> dict[str, Any]:
    prefix = {"custom_tool_call": "ctc", "custom_tool_call_output": "ctco", "web_search_call": "ws"}.get(kind, "it")
    return {**item, "id": item.get("id") or new_id(prefix), "type": kind}


def to_messages(raw: str | list[Any], ignored: list[str] | None = None) -> tuple[list[Draft], list[dict[str, Any]]]:
    """The input (references already expanded) as drafts for the model and as the listed input items; what of it
    is not used is added to `ignored`."""
    items: list[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    if not items:
        raise invalid("'input' must not be empty.", param="input", code="empty_array")
    drafts: list[Draft] = []
    listed_items: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid(f"Invalid item at '{where}': expected an object.", param=where)
        kind = item_type(item)
        if kind in ("function_call", "function_call_output"):
            step = responses_item(item, where)
            drafts.append(step)
            listed_items.append(listed(step, item.get("id") or new_id("fc" if kind == "function_call" else "fco")))
            if kind == "function_call" and item.get("namespace"):
                listed_items[-1] = {**listed_items[-1], "name": item["name"], "namespace": item["namespace"]}
        elif kind in ("custom_tool_call", "custom_tool_call_output") or (kind in SEARCHES and client_search(item)):
            drafts.append(responses_item(item, where))
            listed_items.append(_listed_as_given(item, kind))
        elif kind in LISTED_ONLY:
            listed_items.append(_listed_as_given(item, kind))
        elif kind in COMPACTIONS:
            listed_items.append(_listed_as_given(item, kind))
            if ignored is not None and f"input.{kind}" not in ignored:
                ignored.append(f"input.{kind}")
        elif kind == "reasoning":
            listed_items.append(_listed_reasoning(item))
        elif kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise invalid(
                    f"Invalid value for '{where}.role': {role!r}. Allowed: {', '.join(ROLES)}.",
                    param=f"{where}.role",
                    code="invalid_value",
                )
            text, images = parts(item.get("content"), f"{where}.content", role)
            drafts.append(MessageDraft(role, text, images))
            listed_items.append(_listed_message(item, role, text, images))
        else:
            message = (
                f"Input items of type '{kind}' are not supported by this gateway (it takes "
                f"{', '.join(ITEM_TYPES)} items)."
            )
            raise invalid(message, param=f"{where}.type", code="unsupported_input")
    return drafts, listed_items
