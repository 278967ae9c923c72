"""Background responses: runs owned by the gateway (runs.py) and streams that replay and follow them (follow.py)."""
