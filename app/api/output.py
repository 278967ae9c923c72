"""Rules on the answer itself: stop sequences (chat) and structured outputs (both endpoints)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.errors import ApiError, invalid
from app.schemas import SchemaChecker

JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_STOPS = 4


@dataclass(frozen=True)
class OutputFormat:
    """text, json_object (any JSON object), or json_schema (Codex's output schema, and checked here too)."""

    kind: str = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    param: str | None = None  # where the schema is in the request (for errors)

    def schemas(self) -> list[tuple[str, Any, str | None]]:
        """The schema to check at request time, for app.schemas: (param, schema, error code)."""
        return [(self.param or "schema", self.schema, None)] if self.schema is not None else []

    async def check(self, text: str, schemas: SchemaChecker) -> ApiError | None:
        """Why the answer does not fit the format (a 502), or None; the schema is applied off the event loop."""
        if self.kind == "text":
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return ApiError(
                502, f"The model's answer is not valid JSON ({exc.msg} at {exc.pos}).", code="invalid_json_output"
            )
        except RecursionError:
            return ApiError(502, "The model's answer is JSON nested too deeply to read.", code="invalid_json_output")
        if self.kind == "json_object" and not isinstance(value, dict):
            return ApiError(502, "The model's answer is JSON but not an object.", code="invalid_json_output")
        if self.schema is not None and (mismatch := await schemas.first_error(self.schema, value)) is not None:
            if mismatch.where is None:
                message = f"The model's answer could not be checked against the schema: {mismatch.message}."
            else:
                message = f"The model's answer does not match the schema at {mismatch.where}: {mismatch.message}"
            return ApiError(502, message, code="schema_mismatch")
        return None


def _schema_format(name: Any, schema: Any, param: str) -> OutputFormat:
    """The format's shape; the schema itself is checked by app.schemas (see OutputFormat.schemas)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid(f"'{param}.name' must be 1-64 letters, digits, '_' or '-'.", param=f"{param}.name")
    if not isinstance(schema, dict):
        raise invalid(f"'{param}.schema' must be a JSON Schema object.", param=f"{param}.schema")
    if schema.get("type", "object") != "object":
        raise invalid(f"'{param}.schema' must describe an object (type: object).", param=f"{param}.schema")
    return OutputFormat("json_schema", schema, name, f"{param}.schema")


def chat_format(value: Any) -> OutputFormat:
    """Chat's `response_format`."""
    if value is None:
        return OutputFormat()
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return OutputFormat()
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid("'response_format.json_schema' must be an object.", param="response_format.json_schema")
        return _schema_format(spec.get("name"), spec.get("schema"), "response_format.json_schema")
    raise invalid(
        "Invalid value for 'response_format.type'. Allowed: text, json_object, json_schema.",
        param="response_format.type",
        code="invalid_value",
    )


def responses_format(value: Any) -> OutputFormat:
    """The Responses API's `text.format`."""
    fmt = value.get("format") if isinstance(value, dict) else None
    if value is not None and not isinstance(value, dict):
        raise invalid("'text' must be an object.", param="text")
    if fmt is None:
        return OutputFormat()
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return OutputFormat()
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind == "json_schema":
        return _schema_format(fmt.get("name"), fmt.get("schema"), "text.format")
    raise invalid(
        "Invalid value for 'text.format.type'. Allowed: text, json_object, json_schema.",
        param="text.format.type",
        code="invalid_value",
    )


def stop_strings(value: Any) -> tuple[str, ...]:
    """Chat's `stop`: a string or up to four strings."""
    stops = [value] if isinstance(value, str) else value
    if value is None:
        return ()
    if not isinstance(stops, list) or len(stops) > MAX_STOPS or not all(isinstance(s, str) for s in stops):
        raise invalid("'stop' must be a string or an array of up to 4 strings.", param="stop", code="invalid_value")
    return tuple(s for s in stops if s)


class StopCutter:
    """Cuts streamed text at the first stop string, holding back just enough to catch one split across deltas."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if not self.stops:
            return text
        self.buffer += text
        found = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if found:
            out, self.buffer, self.stopped = self.buffer[: min(found)], "", True
            return out
        cut = max(0, len(self.buffer) - self.hold)
        out, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return out

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out

    def cut(self, text: str) -> str:
        """The whole answer cut at the first stop string."""
        return self.feed(text) + ("" if self.stopped else self.flush())
