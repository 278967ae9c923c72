"""The engines that run a Turn in Codex, both subclasses of base.Engine: exec.py (one `codex exec` per turn) and
app_server/ (a pool of `codex app-server` workers). modes.py and web_search.py serve both."""

from app.engines.base import Engine

__all__ = ["Engine"]
