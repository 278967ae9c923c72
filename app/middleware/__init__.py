"""The ASGI middlewares and HTTP guards, one module each."""
