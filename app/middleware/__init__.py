"""The ASGI middlewares, one module each, outermost first as main.py installs them: request_log.py (x-request-id,
the JSON log line, metrics), hosts.py (the Host allow-list), shutdown.py (503 for a request cut by shutdown),
body_limit.py (413, 408); reply.py answers from any of them. header_limits.py bounds the headers below them all,
in uvicorn's HTTP protocol (431, 408)."""

from app.middleware.body_limit import BodyLimit
from app.middleware.hosts import HostAllowList
from app.middleware.request_log import RequestObserver
from app.middleware.shutdown import ShutdownAnswer

__all__ = ["BodyLimit", "HostAllowList", "RequestObserver", "ShutdownAnswer"]
