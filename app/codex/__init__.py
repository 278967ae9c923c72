"""Codex itself: its binary, home, environment, provider, models, login, sandbox probe and leftovers."""
