"""The app-server engine: a supervised pool of `codex app-server` workers, a thread per turn.

- engine.py: AppServerEngine, a turn on a pooled worker; pool.py: the workers and their supervisor
- rpc.py: JSON-RPC over a worker's stdio; refusals.py: deny by default; protocol.py: the startup protocol check
- translate.py: a Turn as thread/turn parameters, notifications as TurnEvents; dynamic_tools.py: the client's
  functions as Codex dynamic tools; spare_threads.py: threads started ahead of requests
"""

from app.engines.app_server.engine import AppServerEngine

__all__ = ["AppServerEngine"]
