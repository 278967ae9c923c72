"""The app-server engine: a supervised pool of `codex app-server` workers, a thread per turn."""
