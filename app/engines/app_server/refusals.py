"""Deny by default: the answer to every request a Codex app-server sends us (approvals, tool calls, input)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("codex_wrapper")

_REFUSALS: dict[str, dict[str, Any]] = {
    "item/commandExecution/requestApproval": {"decision": "decline"},
    "item/fileChange/requestApproval": {"decision": "decline"},
    "item/permissions/requestApproval": {"permissions": {}, "scope": "turn"},
    "item/tool/requestUserInput": {"answers": {}},
    "mcpServer/elicitation/request": {"action": "decline"},
    "item/tool/call": {  # answered only after the turn is interrupted: the call went back to the HTTP client
        "contentItems": [{"type": "inputText", "text": "The gateway returned this call to its client."}],
        "success": False,
    },
    "applyPatchApproval": {"decision": "denied"},
    "execCommandApproval": {"decision": "denied"},
}


class Refused(LookupError):
    """A server request with no refusal in its own terms: answered with a JSON-RPC error."""


def refuse(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The refusal for `method`; logged, since each one means Codex wanted something the gateway denies."""
    if method == "item/tool/call":  # a client function call, already handed back to the HTTP client
        log.debug("closed app-server request %s (thread %s)", method, params.get("threadId", "-"))
    else:
        log.info("declined app-server request %s (thread %s)", method, params.get("threadId", "-"))
    if method in _REFUSALS:
        return _REFUSALS[method]
    raise Refused(f"{method} is not available through this gateway")
