"""The HTTP API: chat.py (+ chat_answer.py) and responses.py (+ response_input.py, response_events.py) over the
neutral Turn, turn_start.py (what both do to start a turn), models.py, health.py, limits.py; and what they share:
fields.py/params.py (every request field), tools*.py and tool_*.py (function calling), output.py (formats, stop),
files.py, web_search.py, streaming.py (SSE), text_guard.py (invalid text), errors.py (FastAPI's error handlers)."""
