"""Codex-Wrapper: an OpenAI-compatible HTTP API in front of the Codex CLI. Each package's docstring names its modules.

- main.py: create_app (startup, engine, lifespan, middlewares, routes); cli.py, __main__.py: `python -m app`
  serve | doctor | config (effective.py); healthcheck.py: the image's HEALTHCHECK
- middleware/: the ASGI middlewares; api/: the endpoints and their adapters; background/: background responses
- gateway.py: the running gateway's shared state; auth.py: API keys and the rate limit; metrics.py: /metrics
- executor.py: admission, queue, deadline, cancellation; turn.py: the neutral turn model (Turn in, TurnEvents out)
- engines/: exec and app-server; codex/: Codex itself (binary, home, provider, models, login, sandbox probe)
- policy/: what a turn may do and see; images/: image inputs; schemas.py: client JSON Schemas; store/: stored
  responses; config.py: settings; errors.py: the OpenAI error envelope
"""
