"""A scripted fake model provider speaking the Responses streaming protocol on 127.0.0.1.

Codex is pointed at it through a `[model_providers.fake]` entry. The reply to a request is chosen by a
`SCRIPT:<name>` marker anywhere in the request's input text; without one the default script answers.
Every request body is recorded so tests can assert what reached the model.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARKER = "SCRIPT:"


@dataclass
class Script:
    """What the fake model does for one request."""

    deltas: list[str] = field(default_factory=lambda: ["pong"])
    reasoning: list[str] = field(default_factory=list)
    status: int = 200  # a non-200 answers with that HTTP error instead of a stream
    error_message: str = "fake provider error"
    hang: bool = False  # accept the request, then never answer
    delay: float = 0.0  # seconds between stream events
    drop_after: int | None = None  # close the stream after this many deltas, without completion
    # {"name": ..., "arguments": ...}: first answer with this function call; once Codex sends its output back,
    # answer with `deltas`
    tool_call: dict[str, Any] | None = None
    # Client function calls, round by round: the model answers with the first round whose calls (counted from
    # the first round) are not all answered yet by `function_call_output` items in the request; once every round
    # is answered it says `deltas`. A round of two or more calls is parallel. Each call: {"name", "arguments"
    # (a JSON string), optional "call_id"}.
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    call_text: list[str] = field(default_factory=list)  # said (as deltas) before a round's calls
    argument_chunks: int = 1  # streamed argument deltas per call
    calls_from_request: int = 0  # answer with plain `deltas` (no calls) for this many requests first
    input_tokens: int = 11
    cached_tokens: int = 3
    output_tokens: int = 7
    reasoning_tokens: int = 2


def request_text(body: dict[str, Any]) -> str:
    """All text of a Responses request's input items, concatenated."""
    parts: list[str] = []
    for item in body.get("input", []):
        content = item.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


def tool_outputs(body: dict[str, Any]) -> list[str]:
    """The outputs of function calls that Codex sends back to the model."""
    outputs = []
    for item in body.get("input", []):
        if item.get("type") == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = "".join(str(part.get("text", "")) for part in output if isinstance(part, dict))
            outputs.append(str(output))
    return outputs


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last user message item of a Responses request."""
    for item in reversed(body.get("input", [])):
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return "".join(str(p.get("text", "")) for p in content or [] if isinstance(p, dict))
    return ""


class FakeProvider:
    """Threaded HTTP server; `base_url` ends in /v1 as a Responses provider's does."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.requests: list[dict[str, Any]] = []
        self.connections_closed = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.served: dict[str, int] = {}  # requests answered per script name
        self.authorizations: list[str] = []  # the Authorization header of each /responses request ("" if none)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, name: str, script: Script) -> str:
        """Register a script; returns the marker that selects it."""
        self.scripts[name] = script
        return f"{MARKER}{name}"

    def choose(self, body: dict[str, Any]) -> Script:
        return self.pick(body)[0]

    def pick(self, body: dict[str, Any]) -> tuple[Script, int]:
        """The script answering this request, and how many requests it has answered, this one included."""
        text = last_user_text(body) or request_text(body)
        name = "default"
        if MARKER in text:
            marked = text.split(MARKER, 1)[1].split()[0].strip(".,;:\"'")
            name = marked if marked in self.scripts else name
        with self._lock:
            self.served[name] = self.served.get(name, 0) + 1
            return self.scripts.get(name, Script()), self.served[name]

    def record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def closed(self) -> None:
        with self._lock:
            self.connections_closed += 1


def _handler_for(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        _body: dict[str, Any]

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": []})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "bad json"}})
                return
            if not self.path.rstrip("/").endswith("/responses"):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            provider.record(body)
            provider.authorizations.append(self.headers.get("Authorization") or "")
            self._body = body
            script, self._served = provider.pick(body)
            if script.status != 200:
                self._json(script.status, {"error": {"message": script.error_message, "type": "fake"}})
                return
            try:
                self._stream(script)
            except (BrokenPipeError, ConnectionResetError):
                provider.closed()

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def _send(self, event: dict[str, Any], delay: float) -> None:
            if delay:
                time.sleep(delay)
            line = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        def _stream(self, script: Script) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            resp_id = f"resp_fake_{id(self)}"
            self._send({"type": "response.created", "response": {"id": resp_id}}, 0)
            if script.hang:
                while not provider._release.wait(0.2):
                    self._send({"type": "response.in_progress", "response": {"id": resp_id}}, 0)
                return
            index = 0
            if script.reasoning:
                self._reasoning(script, index)
                index += 1
            round_calls = self._round(script)
            if round_calls:
                if script.call_text:
                    self._message(Script(deltas=script.call_text, delay=script.delay), index)
                    index += 1
                for call in round_calls:
                    self._function_call(call, script, index)
                    index += 1
            elif script.tool_call and not tool_outputs(self._body):
                self._tool_call(script, index)
                index += 1
            elif not self._message(script, index):
                self.close_connection = True
                return
            usage = {
                "input_tokens": script.input_tokens,
                "input_tokens_details": {"cached_tokens": script.cached_tokens},
                "output_tokens": script.output_tokens,
                "output_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
                "total_tokens": script.input_tokens + script.output_tokens,
            }
            done = {"type": "response.completed", "response": {"id": resp_id, "usage": usage}}
            self._send(done, script.delay)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _reasoning(self, script: Script, index: int) -> None:
            item_id = f"rs_{index}"
            item = {"type": "reasoning", "id": item_id, "summary": []}
            self._send({"type": "response.output_item.added", "output_index": index, "item": item}, 0)
            for n, text in enumerate(script.reasoning):
                self._send(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        "item_id": item_id,
                        "output_index": index,
                        "summary_index": 0,
                        "delta": text,
                    },
                    script.delay if n else 0,
                )
            summary = [{"type": "summary_text", "text": "".join(script.reasoning)}]
            done = {**item, "summary": summary}
            self._send({"type": "response.output_item.done", "output_index": index, "item": done}, 0)

        def _tool_call(self, script: Script, index: int) -> None:
            call = script.tool_call or {}
            item = {
                "type": "function_call",
                "id": f"fc_{index}",
                "call_id": f"call_{index}",
                "name": call.get("name", "shell"),
                "arguments": call.get("arguments", "{}"),
            }
            if call.get("namespace"):  # a tool of a namespace, such as multi_agent_v1's spawn_agent
                item["namespace"] = call["namespace"]
            self._send({"type": "response.output_item.added", "output_index": index, "item": item}, 0)
            self._send({"type": "response.output_item.done", "output_index": index, "item": item}, 0)

        def _round(self, script: Script) -> list[dict[str, Any]]:
            """The calls this request is answered with (empty: the final answer)."""
            if not script.calls or self._served <= script.calls_from_request:
                return []
            answered, asked = len(tool_outputs(self._body)), 0
            for calls in script.calls:
                asked += len(calls)
                if answered < asked:
                    return calls
            return []

        def _function_call(self, call: dict[str, Any], script: Script, index: int) -> None:
            """One function call as OpenAI streams it: added (no arguments), argument deltas, done."""
            item_id = f"fc_{index}_{self._served}"
            call_id = call.get("call_id") or f"call_{uuid.uuid4().hex[:16]}"
            arguments = str(call.get("arguments", "{}"))
            item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": call["name"], "arguments": ""}
            self._send({"type": "response.output_item.added", "output_index": index, "item": item}, 0)
            size = max(1, -(-len(arguments) // max(1, script.argument_chunks)))
            for start in range(0, len(arguments), size):
                delta = {"item_id": item_id, "output_index": index, "delta": arguments[start : start + size]}
                self._send({"type": "response.function_call_arguments.delta", **delta}, script.delay)
            done = {"item_id": item_id, "output_index": index, "arguments": arguments, "name": call["name"]}
            self._send({"type": "response.function_call_arguments.done", **done}, 0)
            item = {**item, "arguments": arguments, "status": "completed"}
            self._send({"type": "response.output_item.done", "output_index": index, "item": item}, 0)

        def _message(self, script: Script, index: int) -> bool:
            item_id = f"msg_{index}"
            item = {"type": "message", "id": item_id, "role": "assistant", "content": []}
            self._send({"type": "response.output_item.added", "output_index": index, "item": item}, 0)
            for n, delta in enumerate(script.deltas):
                if script.drop_after is not None and n >= script.drop_after:
                    return False
                event = {
                    "type": "response.output_text.delta",
                    "item_id": item_id,
                    "output_index": index,
                    "content_index": 0,
                    "delta": delta,
                }
                self._send(event, script.delay)
            text = "".join(script.deltas)
            content = [{"type": "output_text", "text": text, "annotations": []}]
            done = {**item, "content": content, "status": "completed"}
            self._send({"type": "response.output_item.done", "output_index": index, "item": done}, 0)
            return True

    return Handler
