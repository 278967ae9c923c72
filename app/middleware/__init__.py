"""The ASGI middlewares, one module each, outermost first as main.py installs them: request_log.py (x-request-id,
the JSON log line, metrics), hosts.py (the Host allow-list; and the header bounds, in uvicorn's protocol),
shutdown.py (503 for a request cut by shutdown), body_limit.py (413, 408); reply.py answers from any of them."""

from app.middleware.body_limit import BodyLimit
from app.middleware.hosts import HostAllowList
from app.middleware.request_log import RequestObserver
from app.middleware.shutdown import ShutdownAnswer

__all__ = ["BodyLimit", "HostAllowList", "RequestObserver", "ShutdownAnswer"]
