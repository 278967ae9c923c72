"""What a request asks of the model's function calls, checked on its answer.

Codex offers the client's functions with tool_choice "auto" only, so the gateway honours the rest itself: a
required call (tool_choice "required" or a named function: asked for in words, see tools.must_call_instruction)
must come, the arguments of a call to a `strict` function must match its parameters, and with
parallel_tool_calls false only the first call is returned. An answer that breaks the first two is asked for
once more; a second such answer fails the request (502, code tool_call_not_honoured).

The checks are a filter over the turn's events: each attempt is a fresh run the caller hands in (`attempt`), so
this module knows nothing of admission or the executor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable

from app.schemas import SchemaChecker
from app.turn import Completed, Failed, FailureKind, TextDelta, ToolCall, Turn, TurnEvent

log = logging.getLogger("codex_wrapper")
ATTEMPTS = 2


async def broken_contract(turn: Turn, calls: list[ToolCall], schemas: SchemaChecker) -> str | None:
    """How the answer's calls break what the request asked, or None (arguments are checked off the event loop)."""
    choice = turn.tool_choice
    if choice.mode == "required" and not calls:
        wanted = f"the function {choice.name!r}" if choice.name else "a function"
        return f"The model answered without calling {wanted}, which tool_choice requires."
    if choice.name is not None and any(call.name != choice.name for call in calls):
        return f"The model called another function than {choice.name!r}, which tool_choice names."
    specs = {spec.name: spec for spec in turn.tools}
    for call in calls:
        spec = specs.get(call.name)
        if spec is None or not spec.strict:
            continue
        try:
            arguments = json.loads(call.arguments)
        except json.JSONDecodeError as exc:
            return f"The model called {call.name!r} with arguments that are not JSON ({exc.msg})."
        except RecursionError:
            return f"The model called {call.name!r} with arguments nested too deeply to read."
        mismatch = await schemas.first_error(spec.parameters, arguments)
        if mismatch is None:
            continue
        if mismatch.where is None:
            return f"The arguments of {call.name!r} cannot be checked against its parameters: {mismatch.message}."
        mismatch_text = f"do not match its parameters at {mismatch.where}: {mismatch.message}"
        return f"The model called {call.name!r} with arguments that {mismatch_text}"
    return None


async def tool_events(
    attempt: Callable[[], AsyncGenerator[TurnEvent, None]], turn: Turn, schemas: SchemaChecker
) -> AsyncGenerator[TurnEvent, None]:
    """The turn's events, its calls checked (see the module's doc); calls come just before Completed. `attempt`
    runs the turn once more (admitted like the first); a broken contract ends as Failed(BROKEN_CONTRACT)."""
    for tries in range(1, ATTEMPTS + 1):
        held: list[TurnEvent] = []  # text held back while a required call has not come (it could be retried)
        calls: list[ToolCall] = []
        shown = False  # text already passed on: a retry would repeat it
        events = attempt()
        try:
            async for event in events:
                if isinstance(event, ToolCall):
                    calls.append(event)
                    continue
                if isinstance(event, TextDelta) and turn.tool_choice.mode == "required":
                    held.append(event)
                    continue
                if not isinstance(event, Completed):
                    shown = shown or isinstance(event, TextDelta)
                    yield event
                    if isinstance(event, Failed):
                        return
                    continue
                broken = await broken_contract(turn, calls, schemas)
                if broken is None:
                    for kept in (*held, *(calls if turn.parallel_tool_calls else calls[:1])):
                        yield kept
                    yield event
                    return
                if tries == ATTEMPTS or shown:
                    asked = "twice" if tries == ATTEMPTS else "once"
                    yield Failed(FailureKind.BROKEN_CONTRACT, f"{broken} (asked {asked})")
                    return
                log.info("asking the model again: %s", broken)
                break
        finally:
            await events.aclose()
